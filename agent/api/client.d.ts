// TypeScript declarations of the kpe-agent JavaScript client (client.js),
// served by the agent at /v1/client.d.ts. The answers are the local API's
// JSON objects as the OpenAPI document (/v1/openapi.yaml) describes them,
// with its snake_case field names; the options are camelCase.

/** Languages of the messages. */
export type Lang = "id" | "en";
/** Who reads the messages: the clerk at a counter, or the card holder at a kiosk. */
export type Audience = "clerk" | "holder";

/**
 * The API's symbolic error codes (ErrorCode in the OpenAPI document), and the
 * client's own: `network` (no answer: the agent is down, the page's origin was
 * refused, a timeout, a dropped connection) and `bad-response` (an answer that
 * is not the API's). A newer agent may send codes not listed here.
 */
export type ErrorCode =
  | "network"
  | "bad-response"
  | "bad-request"
  | "unknown-service"
  | "unauthorized"
  | "forbidden-host"
  | "forbidden-origin"
  | "forbidden-scope"
  | "no-reader"
  | "not-available"
  | "not-found"
  | "no-card"
  | "card-removed"
  | "reader-busy"
  | "reader-in-use"
  | "finger-last-try"
  | "sync-disabled"
  | "unknown-card"
  | "card-not-genuine"
  | "data-not-authentic"
  | "card-error"
  | "finger-no-match"
  | "finger-place-again"
  | "finger-blocked"
  | "ktpel-not-configured"
  | "cancelled"
  | "not-recorded"
  | "internal"
  | "sync-failed"
  | "pcsc-unavailable"
  | "no-sam"
  | "sam-blocked"
  | "sam-not-activated"
  | "sam-counter-behind"
  | "no-sensor"
  | "sensor-error"
  | "shutting-down"
  | "timeout"
  | "outbox-full"
  | (string & {});

/** An error of the agent, or of the way to it. */
export class KpeError extends Error {
  constructor(code: string, message: string, init?: { status?: number; retriable?: boolean; triesLeft?: number; cause?: unknown });
  /** The symbolic code: stable, for programs. */
  code: ErrorCode;
  /** The HTTP status; 0 when there was no answer. */
  status: number;
  /** Trying again, after the action the message names, can succeed. */
  retriable: boolean;
  /** Fingerprint tries left on the card, when the agent knows. */
  triesLeft?: number;
}

/** The API's error object (inside answers and events). */
export interface ApiError {
  code: ErrorCode;
  message: string;
  retriable: boolean;
  tries_left?: number;
}

export interface ClientOptions {
  /** The agent's origin, e.g. "http://127.0.0.1:7531". Default: the origin this module was loaded from. */
  baseUrl?: string;
  /** The API token (sent as a bearer token). Never store it in localStorage. */
  token?: string;
  /** "same-origin": the cookie of the agent's own page (the kiosk, the counter screen) instead of a token. */
  credentials?: "same-origin" | "omit";
  /** Sent with every call; default: the agent's rule (Accept-Language, then the terminal's language). */
  lang?: Lang;
  /** Sent with every call; default clerk. */
  audience?: Audience;
  /** Bound of every call but authenticate, sync and events; default 10000; 0: none. */
  timeoutMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export type CardKind = "kpe" | "kpe-tambahan" | "ktpel" | "sam" | "unknown";
export type SessionState =
  | "idle"
  | "detected"
  | "identified"
  | "authenticated"
  | "fingerprint"
  | "prompt"
  | "verified"
  | "recorded"
  | "removed"
  | "failed";

export interface HealthStatus {
  status: "ok" | "degraded";
}

export interface SAM {
  present: boolean;
  reader?: string;
  serial?: string;
  state?: "active" | "inactive" | "blocked";
  tries_left?: number;
  signature_counter?: number;
}

export interface Health extends HealthStatus {
  version?: string;
  started?: string;
  terminal?: string;
  pcsc?: "ok" | "unavailable";
  readers?: number;
  sam?: SAM;
  problems?: ApiError[];
  /** The link to the back office in one look (a status light). */
  back_office?: BackOffice;
}

export interface BackOffice {
  /** online: the last attempt to send reached it; offline: it failed, records wait; disabled: no back office. */
  state: "online" | "offline" | "disabled";
  /** Records not yet acknowledged by the back office. */
  queued: number;
}

/** A prompt of a running workflow, answered with answerPrompt. */
export interface Prompt {
  id: string;
  kind: "last-try" | (string & {});
}

export interface Reader {
  name: string;
  role: "card" | "sam" | "ignored";
  card_present: boolean;
  card_kind?: CardKind;
  state: SessionState;
  busy: boolean;
  error?: ApiError;
  /** while the workflow waits for an answer (state "prompt") */
  prompt?: Prompt;
}

export interface AuthOptions extends CallOptions {
  /** One of the terminal's services: askes, taspen, bapertarum, kiosk. */
  service: string;
  /** The clerk's ID, recorded with the code (optional for the kiosk). */
  operator?: string;
  /** Default: the only card reader, or the one holding a card. */
  reader?: string;
  /** How long the agent waits for a card; 0 (default) fails at once with no-card. */
  waitSeconds?: number;
  /** Allow the card's last fingerprint try (after finger-last-try). */
  confirmLastTry?: boolean;
  /** Ask for the last try inside the workflow (a "prompt" event) instead of failing with finger-last-try. */
  prompts?: boolean;
}

export interface AuthResult {
  code: string;
  record_id: string;
  service: string;
  reader: string;
  card_kind: "kpe" | "kpe-tambahan" | "ktpel";
  signature_counter: number;
  time: string;
  message: string;
  tap_to_code_ms?: number;
}

export interface Prefill {
  card_kind: "kpe" | "kpe-tambahan";
  nama: string;
  nip?: string;
  nip_pegawai?: string;
  hubungan?: string;
  tempat_lahir?: string;
  tanggal_lahir?: string;
  jenis_kelamin?: string;
  alamat?: string;
  no_askes_bpjs?: string;
  instansi?: string;
  golongan_ruang?: string;
  data_verified: boolean;
}

export interface Check {
  ok: boolean;
  code?: string;
  reason?: string;
}

/** GET /v1/card: the card's data within the privacy rules (CardView in the OpenAPI document). */
export interface CardView {
  atr: string;
  kind: CardKind;
  verdict: string;
  checks: {
    card_authentic: Check;
    data_authentic: Check;
    identifiers_consistent: Check;
    failed_groups?: number[];
  };
  warnings?: { code: string; message: string }[];
  card_info?: { serial: string; type: "KPE" | "KPE Tambahan"; profile_version: number; issuer?: string };
  identity?: {
    name: string;
    nip?: string;
    birth_place?: string;
    birth_date?: string;
    gender?: string;
    address?: string;
    nik?: string;
    id_pns?: string;
    linked_nip?: string;
    relation?: string;
  };
  employment?: {
    status?: string;
    pangkat?: string;
    golongan_ruang?: string;
    tmt_pangkat?: string;
    jabatan?: string;
    tmt_jabatan?: string;
    parent_agency?: string;
    working_agency?: string;
    work_units?: { Level: number; Name: string }[];
    work_location?: string;
  };
  family?: {
    role: "spouse" | "child";
    name: string;
    nik?: string;
    birth_date?: string;
    relation?: string;
    dependant: boolean;
    kpe_tambahan?: string;
  }[];
  benefits?: {
    askes_bpjs?: string;
    taspen?: string;
    taperum?: string;
    taperum_status?: string;
    bank?: string;
    account_masked?: string;
  };
  photo?: { bytes: number };
  ktpel?: { population_data_redacted: boolean; fingerprint_templates: number };
  sam?: { serial: string; state: string; tries_left: number; signature_counter: number };
}

/**
 * GET /v1/kiosk/view: the card holder's own view, after a kiosk authentication
 * of the card. A KTP-el is only {kind: "ktpel", verified: true}. The sections
 * are as the OpenAPI document's KioskView describes them.
 */
export interface RenewalField {
  group: number;
  key: string;
  label: string;
  value: string;
  changed: boolean;
}

export interface RenewalView {
  reader: string;
  state: "none" | "checking" | "available" | "writing" | "done" | "failed" | "interrupted";
  reason?: string;
  message?: string;
  interrupted?: boolean;
  card?: RenewalField[];
  new?: RenewalField[];
  code?: string;
  record_id?: string;
}

/** GET /v1/purse: the e-wallet of the card in a reader (docs/ewallet.md). */
export interface PurseView {
  reader: string;
  balance: number;
  max_balance: number;
  ptc: number;
  /** Newest first. */
  transactions: PurseTransaction[];
  topup: TopUpView;
}

export interface PurseTransaction {
  kind: "debit" | "credit";
  amount: number;
  balance_after: number;
  time: string;
}

export interface TopUpView {
  state: "none" | "available" | "done" | "not-done" | "pending";
  reason?: string;
  message?: string;
  amount?: number;
  code?: string;
  record_id?: string;
}

export interface PayOptions extends CallOptions {
  /** Whole rupiah, 1 to the terminal's ewallet.max_payment. */
  amount: number;
  /** The clerk's ID, recorded with the payment. */
  operator: string;
  /** 1 to 64 printable ASCII characters: made once per payment, sent again unchanged on a retry. */
  idempotencyKey: string;
  /** The merchant's reference (an invoice number), at most 64 bytes. */
  merchantRef?: string;
  reader?: string;
  waitSeconds?: number;
  confirmLastTry?: boolean;
}

export interface PayResult {
  status: "done" | "not-done" | "pending";
  idempotency_key: string;
  amount: number;
  /** done: the payment record's receipt code and id, the card's balance after. */
  code?: string;
  record_id?: string;
  balance?: number;
  /** not-done, pending: why (docs/ewallet.md). */
  reason?: string;
  message?: string;
}

export interface KioskView {
  kind: CardKind;
  verified: boolean;
  identity?: Record<string, unknown>;
  employment?: Record<string, unknown>;
  family?: Record<string, unknown>;
  benefits?: Record<string, unknown>;
  tambahan?: Record<string, unknown>;
  /** GET /v1/kiosk/photo has the card's photo. */
  photo?: boolean;
}

/** GET /v1/codes/today: one of this terminal's records of today. */
export interface TodayCode {
  code: string;
  service: string;
  /** the record's time, with the terminal's UTC offset */
  time: string;
  /** queued: on the terminal; synced: the back office has it; rejected: the back office refused it */
  state: "queued" | "synced" | "rejected";
}

/** GET /v1/codes/today: this terminal's records of today, newest first; no personal data. */
export interface TodayCodes {
  /** today in the terminal's time zone, YYYY-MM-DD */
  date: string;
  codes: TodayCode[];
  /** there may be more than the 1000 listed */
  truncated: boolean;
}

export interface SyncStatus {
  enabled: boolean;
  url?: string;
  last_attempt?: string;
  last_success?: string;
  last_error?: string;
  failures: number;
  next_attempt?: string;
  clock_skewed?: boolean;
  accepted: number;
  duplicates: number;
  rejected: number;
}

export interface QueueStatus {
  pending: number;
  sending: number;
  acknowledged: number;
  dead: number;
  oldest_unsynced_seconds: number;
  used: number;
  sync: SyncStatus;
}

export interface SyncResult {
  sent: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  remaining: number;
  error?: ApiError;
}

/** One event of GET /v1/events. */
export interface KpeEvent {
  seq: number;
  time: string;
  type: "reader" | "session" | "sam" | "sync" | "service" | (string & {});
  reader?: string;
  state?: string;
  card_kind?: CardKind;
  /** the authentication code (session state recorded) */
  code?: string;
  error?: ApiError;
  /** place-finger, confirm-last-try, recorded, ... */
  message_code?: string;
  message?: string;
  /** fingerprint tries left (with a prompt) */
  tries_left?: number;
  /** the question a workflow waits on (session state prompt) */
  prompt?: Prompt;
}

/** The event stream's state, for a connection light. */
export interface StreamStatus {
  /**
   * connecting; open (re-read what you show: events during a gap may be lost);
   * retrying (after error, in delayMs); restarted (seq went back: the agent
   * restarted); closed (aborted, or error says why).
   */
  state: "connecting" | "open" | "retrying" | "restarted" | "closed";
  /** connection attempts since the last open */
  attempt: number;
  /** the Last-Event-ID a reconnection sends ("" for none) */
  lastEventId: string;
  error?: KpeError;
  delayMs?: number;
}

export interface EventsOptions extends CallOptions {
  onEvent: (ev: KpeEvent) => void;
  onStatus?: (s: StreamStatus) => void;
  /** Resume after this event (a Last-Event-ID). */
  lastEventId?: number | string;
  /** First delay before reconnecting (default 500; the stream's retry field replaces it). */
  retryMinMs?: number;
  /** Cap of the doubling delay (default 5000). */
  retryMaxMs?: number;
}

export class KpeClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  /** "" leaves the language to the agent. */
  lang: Lang | "";
  /** "" is the clerk. */
  audience: Audience | "";
  health(o?: CallOptions): Promise<Health | HealthStatus>;
  readers(o?: CallOptions): Promise<Reader[]>;
  card(reader?: string, o?: CallOptions): Promise<CardView>;
  prefill(reader?: string, o?: CallOptions): Promise<Prefill>;
  authenticate(req: AuthOptions): Promise<AuthResult>;
  /** true: a workflow was cancelled; false: none ran. reader must be named (TypeError otherwise). */
  cancel(reader: string, o?: CallOptions): Promise<boolean>;
  /** Every reader's workflow ({"all": true}); true: one was cancelled; false: none ran. */
  cancelAll(o?: CallOptions): Promise<boolean>;
  /** true: taken; false: no such prompt waits. */
  answerPrompt(reader: string, id: string, answer: "continue" | "cancel", o?: CallOptions): Promise<boolean>;
  queue(o?: CallOptions): Promise<QueueStatus>;
  sync(o?: CallOptions): Promise<SyncResult>;
  /** The bearer token or the counter screen's credential. */
  codesToday(o?: CallOptions): Promise<TodayCodes>;
  kioskView(reader: string, o?: CallOptions): Promise<KioskView>;
  /** The card data renewal of the card in reader (docs/renewal.md). */
  renewal(reader: string, o?: CallOptions): Promise<RenewalView>;
  renewalCheck(reader: string, o?: CallOptions): Promise<RenewalView>;
  /** Answers when the renewal ended; not bounded by timeoutMs. */
  renewalApply(reader: string, o?: CallOptions): Promise<RenewalView>;
  renewalDecline(reader: string, o?: CallOptions): Promise<void>;
  /** The e-wallet of the card in reader (docs/ewallet.md part 3). */
  purse(reader: string, o?: CallOptions): Promise<PurseView>;
  topUpCheck(reader: string, o?: CallOptions): Promise<PurseView>;
  /** Answers when the credit ended; not bounded by timeoutMs. */
  topUpApply(reader: string, o?: CallOptions): Promise<PurseView>;
  topUpDecline(reader: string, o?: CallOptions): Promise<void>;
  /** An e-wallet payment (docs/ewallet.md); not bounded by timeoutMs. */
  pay(req: PayOptions): Promise<PayResult>;
  /** The outcome of a payment by its idempotency key. */
  payStatus(key: string, o?: CallOptions & { reader?: string }): Promise<PayResult>;
  /** image/jpeg */
  kioskPhoto(reader: string, o?: CallOptions): Promise<Blob>;
  /** image/png */
  kioskQR(code: string, o?: CallOptions): Promise<Blob>;
  /** Resolves when o.signal aborts; rejects on a failure retrying cannot mend. */
  events(o: EventsOptions): Promise<void>;
}

export function createClient(options?: ClientOptions): KpeClient;
