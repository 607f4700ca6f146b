// The JavaScript client of the kpe-agent local API (docs/local-api.md,
// "JavaScript client"). One ES module: no dependencies, no build step. The
// agent serves it at /v1/client.js, and its TypeScript declarations at
// /v1/client.d.ts (kept beside this file as client.d.ts).
//
//   import { createClient, KpeError } from "http://127.0.0.1:7531/v1/client.js";
//   const agent = createClient({ token, lang: "id" });
//   const res = await agent.authenticate({ service: "askes", operator: "clerk-01", waitSeconds: 60, prompts: true });

/**
 * The words of the client's own errors (network, bad-response), by
 * language and audience. The agent fills them in from its message
 * catalogue when it serves this file; a copy loaded from elsewhere has
 * none, and its errors say their code.
 * @type {Record<string, Record<string, Record<string, string>>>}
 */
const WORDS = /* kpe:words */ {};

const LANGS = ["id", "en"];
const AUDIENCES = ["clerk", "holder"];
const ANSWERS = ["continue", "cancel"];

/** Bounds of the event stream: one line, one event's data. */
const MAX_LINE = 64 * 1024;
const MAX_DATA = 1024 * 1024;

/**
 * An error of the agent, or of the way to it. `code` is the API's symbolic
 * code (docs/local-api.md, "Errors"), or `network` (the agent did not
 * answer: not running, the page's origin refused, a timeout, the
 * connection dropped) or `bad-response` (an answer that is not the
 * API's). `message` is for people, in the client's language and for its
 * audience.
 */
export class KpeError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, retriable?: boolean, triesLeft?: number, cause?: unknown}} [init]
   */
  constructor(code, message, init = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "KpeError";
    /** @type {string} */
    this.code = code;
    /** HTTP status of the answer; 0 when there was none. */
    this.status = init.status ?? 0;
    /** Trying again, after the action the message names, can succeed. */
    this.retriable = init.retriable ?? false;
    /** @type {number | undefined} fingerprint tries left on the card */
    this.triesLeft = init.triesLeft;
  }
}

/**
 * A client of the agent at `baseUrl`.
 * @param {import("./client.js").ClientOptions} [options]
 * @returns {KpeClient}
 */
export function createClient(options) {
  return new KpeClient(options);
}

/** The agent's origin when this module was loaded from it. */
function moduleOrigin() {
  try {
    const u = new URL(import.meta.url);
    if (u.protocol === "http:" || u.protocol === "https:") return u.origin;
  } catch {
    // not loaded from a URL
  }
  return "";
}

/** @param {string} s */
function agentOrigin(s) {
  let u;
  try {
    u = new URL(s);
  } catch {
    throw new TypeError(`kpe-agent client: baseUrl ${JSON.stringify(s)} is not a URL`);
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.username || u.password || u.search || u.hash || (u.pathname !== "/" && u.pathname !== "")) {
    throw new TypeError(`kpe-agent client: baseUrl ${JSON.stringify(s)}: want http://host:port, no path`);
  }
  return u.origin;
}

/** @param {unknown} v @param {string[]} allowed @param {string} what */
function oneOf(v, allowed, what) {
  if (v === undefined || v === null || v === "") return "";
  if (typeof v !== "string" || !allowed.includes(v)) {
    throw new TypeError(`kpe-agent client: ${what} must be one of ${allowed.join(", ")}, not ${JSON.stringify(v)}`);
  }
  return v;
}

/** @param {unknown} v @param {string} what */
function optString(v, what) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new TypeError(`kpe-agent client: ${what} must be a string`);
  return v;
}

/** @param {unknown} v @param {string} what */
function needString(v, what) {
  if (typeof v !== "string" || v === "") throw new TypeError(`kpe-agent client: ${what} must be a non-empty string`);
  return v;
}

/**
 * A signal that aborts when `signal` does or after `ms` (0: never), and
 * its clean-up; `timedOut` says which happened.
 * @param {AbortSignal | undefined} signal
 * @param {number} ms
 */
function linkSignals(signal, ms) {
  if (!ms) return { signal, done() {}, timedOut: () => false };
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort(new DOMException("no answer in time", "TimeoutError"));
  }, ms);
  const onAbort = () => ctl.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ctl.signal,
    done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
    timedOut: () => timedOut,
  };
}

/**
 * Waits `ms`; false when `signal` aborted first.
 * @param {number} ms @param {AbortSignal | undefined} signal
 * @returns {Promise<boolean>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * An error that ends the event stream for good (an exception of the
 * caller's onEvent or onStatus among them), carried out of the parser and
 * the loop unchanged.
 */
class HandlerFailure {
  /** @param {unknown} error */
  constructor(error) {
    this.error = error;
  }
}

/**
 * The Server-Sent Events framing (the HTML standard's event stream
 * format): lines ended by CRLF, LF or CR; "data" lines joined with LF;
 * "event", "id" and "retry" fields; comments (":") and unknown fields
 * ignored; a blank line dispatches; an event without data is dropped.
 */
class SSEParser {
  #buf = "";
  #skipLF = false;
  /** @type {string[]} */
  #data = [];
  #dataLen = 0;
  #type = "";
  /** the last event ID buffer */
  #id = "";
  /**
   * @param {(msg: {type: string, data: string, id: string}) => void} onMessage
   * @param {(id: string) => void} onId the last event ID, at each dispatch
   * @param {(ms: number) => void} onRetry
   */
  constructor(onMessage, onId, onRetry) {
    this.onMessage = onMessage;
    this.onId = onId;
    this.onRetry = onRetry;
  }

  /** @param {string} text decoded text, in any chunks */
  push(text) {
    if (this.#skipLF && text.length > 0) {
      if (text[0] === "\n") text = text.slice(1);
      this.#skipLF = false;
    }
    const s = this.#buf + text;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = s.slice(start, i);
      if (c === 13) {
        if (i + 1 === s.length) this.#skipLF = true;
        else if (s.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      this.#line(line);
    }
    this.#buf = s.slice(start);
    if (this.#buf.length > MAX_LINE) throw new RangeError(`event stream line longer than ${MAX_LINE}`);
  }

  /** @param {string} line */
  #line(line) {
    if (line === "") return this.#dispatch();
    if (line[0] === ":") return; // a comment: the agent's keep-alive
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value[0] === " ") value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        this.#dataLen += value.length + 1;
        if (this.#dataLen > MAX_DATA) throw new RangeError(`event data longer than ${MAX_DATA}`);
        break;
      case "event":
        this.#type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default: // ignored, as the format says
    }
  }

  #dispatch() {
    this.onId(this.#id);
    const data = this.#data;
    const type = this.#type;
    this.#data = [];
    this.#dataLen = 0;
    this.#type = "";
    if (data.length === 0) return;
    this.onMessage({ type: type || "message", data: data.join("\n"), id: this.#id });
  }
}

/**
 * The client. Every method returns a promise that rejects with a
 * {@link KpeError}, or with the abort reason when the caller's `signal`
 * aborted; bad arguments throw a TypeError at once.
 */
export class KpeClient {
  #base;
  #token;
  /** @type {RequestCredentials} */
  #credentials;
  #lang;
  #audience;
  #timeoutMs;

  /** @param {import("./client.js").ClientOptions} [options] */
  constructor(options = {}) {
    if (typeof options !== "object" || options === null) throw new TypeError("kpe-agent client: options must be an object");
    const base = options.baseUrl ?? moduleOrigin();
    if (!base) throw new TypeError("kpe-agent client: baseUrl is needed (e.g. http://127.0.0.1:7531)");
    this.#base = agentOrigin(base);
    this.#token = (optString(options.token, "token") ?? "").trim();
    if (this.#token && !/^[\x21-\x7e]+$/.test(this.#token)) throw new TypeError("kpe-agent client: the token holds characters a token cannot have");
    const cred = oneOf(options.credentials, ["same-origin", "omit"], "credentials");
    if (this.#token && cred === "same-origin") {
      throw new TypeError("kpe-agent client: give a token or credentials: \"same-origin\" (the agent's own pages), not both");
    }
    // a bearer token needs no cookie, and the agent's own pages (the kiosk,
    // the counter screen) send their cookie to their own origin only
    this.#credentials = cred === "same-origin" ? "same-origin" : "omit";
    this.#lang = oneOf(options.lang, LANGS, "lang");
    this.#audience = oneOf(options.audience, AUDIENCES, "audience");
    const t = options.timeoutMs ?? 10000;
    if (typeof t !== "number" || !(t >= 0) || !Number.isFinite(t)) throw new TypeError("kpe-agent client: timeoutMs must be a number >= 0");
    this.#timeoutMs = t;
  }

  /** The agent's origin, e.g. http://127.0.0.1:7531. */
  get baseUrl() {
    return this.#base;
  }

  /** The messages' language, "id" or "en" ("" leaves it to the agent). */
  get lang() {
    return this.#lang;
  }
  set lang(v) {
    this.#lang = oneOf(v, LANGS, "lang");
  }

  /** Who reads the messages: "clerk" or "holder" ("" is the clerk). */
  get audience() {
    return this.#audience;
  }
  set audience(v) {
    this.#audience = oneOf(v, AUDIENCES, "audience");
  }

  /**
   * The URL of an API path with the client's lang and audience.
   * @param {string} path @param {Record<string, string | undefined>} [query]
   */
  #url(path, query = {}) {
    const u = new URL(path, this.#base);
    for (const [k, v] of Object.entries(query)) if (v) u.searchParams.set(k, v);
    if (this.#lang) u.searchParams.set("lang", this.#lang);
    if (this.#audience) u.searchParams.set("audience", this.#audience);
    return u.href;
  }

  /** @param {string} accept */
  #headers(accept) {
    /** @type {Record<string, string>} */
    const h = { Accept: accept };
    if (this.#token) h.Authorization = `Bearer ${this.#token}`;
    return h;
  }

  /** The client's own error. @param {"network" | "bad-response"} code @param {{status?: number, retriable?: boolean, cause?: unknown}} init */
  #own(code, init) {
    let lang = this.#lang;
    if (!lang) {
      const nav = typeof navigator === "undefined" ? [] : navigator.languages ?? [navigator.language];
      lang = nav.map((l) => String(l).slice(0, 2).toLowerCase()).find((l) => LANGS.includes(l)) ?? "id";
    }
    const msg = WORDS[lang]?.[this.#audience || "clerk"]?.[code] ?? code;
    return new KpeError(code, msg, init);
  }

  /**
   * The error of an answer >= 400; a body cut short is a network error.
   * @param {Response} res
   */
  async #apiError(res) {
    let text;
    try {
      text = await res.text();
    } catch (err) {
      return this.#own("network", { status: res.status, retriable: true, cause: err });
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      // not the API's error body
    }
    const e = body?.error;
    if (e && typeof e.code === "string" && e.code) {
      return new KpeError(e.code, typeof e.message === "string" && e.message ? e.message : e.code, {
        status: res.status,
        retriable: e.retriable === true,
        triesLeft: Number.isInteger(e.tries_left) && e.tries_left > 0 ? e.tries_left : undefined,
      });
    }
    return this.#own("bad-response", { status: res.status, retriable: res.status >= 500, cause: new Error(`HTTP ${res.status} without an error body`) });
  }

  /**
   * One call. expect: "json" (the answer's JSON), "blob", or "none"
   * (204; a 404 not-found is false).
   * @param {string} method @param {string} path
   * @param {{query?: Record<string, string | undefined>, body?: unknown, signal?: AbortSignal, bounded?: boolean, expect?: "json" | "blob" | "none"}} [o]
   * @returns {Promise<any>}
   */
  async #call(method, path, o = {}) {
    const { query, body, signal, bounded = true, expect = "json" } = o;
    if (signal?.aborted) throw signal.reason;
    const headers = this.#headers(expect === "blob" ? "*/*" : "application/json");
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const link = linkSignals(signal, bounded ? this.#timeoutMs : 0);
    /** @param {unknown} err */
    const failed = (err) => {
      if (signal?.aborted) return signal.reason;
      if (err instanceof KpeError) return err;
      const why = link.timedOut() ? new Error(`no answer within ${this.#timeoutMs} ms`, { cause: err }) : err;
      return this.#own("network", { retriable: true, cause: why });
    };
    try {
      /** @type {Response} */
      let res;
      try {
        res = await fetch(this.#url(path, query), {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: link.signal,
          credentials: this.#credentials,
          cache: "no-store",
          redirect: "manual",
        });
      } catch (err) {
        throw failed(err);
      }
      if (res.type === "opaqueredirect" || (res.status >= 300 && res.status < 400)) {
        throw this.#own("bad-response", { status: res.status, cause: new Error("the agent never redirects") });
      }
      if (!res.ok) {
        const e = await this.#apiError(res);
        if (signal?.aborted) throw signal.reason;
        if (expect === "none" && e.code === "not-found" && e.status === 404) return false;
        throw e;
      }
      if (expect === "none") {
        await res.body?.cancel();
        return true;
      }
      if (expect === "blob") return await res.blob().catch((err) => Promise.reject(failed(err)));
      const text = await res.text().catch((err) => Promise.reject(failed(err)));
      try {
        return JSON.parse(text);
      } catch (err) {
        throw this.#own("bad-response", { status: res.status, cause: err });
      }
    } finally {
      link.done();
    }
  }

  /**
   * The agent's state. Without a token (or kiosk cookie) only `status`.
   * @param {{signal?: AbortSignal}} [o]
   */
  health(o = {}) {
    return this.#call("GET", "/v1/health", { signal: o.signal });
  }

  /** The card readers. @param {{signal?: AbortSignal}} [o] */
  readers(o = {}) {
    return this.#call("GET", "/v1/readers", { signal: o.signal });
  }

  /**
   * The card's data in `reader` (default: the agent's choice).
   * @param {string} [reader] @param {{signal?: AbortSignal}} [o]
   */
  card(reader, o = {}) {
    return this.#call("GET", "/v1/card", { query: { reader: optString(reader, "reader") }, signal: o.signal });
  }

  /** The ASKES / BPJS form from the card. @param {string} [reader] @param {{signal?: AbortSignal}} [o] */
  prefill(reader, o = {}) {
    return this.#call("GET", "/v1/card/askes-form", { query: { reader: optString(reader, "reader") }, signal: o.signal });
  }

  /**
   * Runs an authentication and resolves with its code. It waits for the
   * card and the finger: no timeout, only `signal` ends it (and aborting
   * cancels the workflow on the agent). With `prompts: true` the last
   * fingerprint try is asked inside the workflow: a session event with
   * state "prompt" that {@link answerPrompt} answers.
   * @param {import("./client.js").AuthOptions} req
   */
  authenticate(req) {
    if (typeof req !== "object" || req === null) throw new TypeError("kpe-agent client: authenticate needs {service, operator, ...}");
    /** @type {Record<string, unknown>} */
    const body = { service: needString(req.service, "service") };
    const operator = optString(req.operator, "operator");
    if (operator !== undefined) body.operator = operator;
    const reader = optString(req.reader, "reader");
    if (reader) body.reader = reader;
    if (req.waitSeconds !== undefined) {
      if (!Number.isInteger(req.waitSeconds) || req.waitSeconds < 0) throw new TypeError("kpe-agent client: waitSeconds must be an integer >= 0");
      if (req.waitSeconds > 0) body.wait_seconds = req.waitSeconds;
    }
    // sent only when true: an agent that predates a flag refuses it
    if (req.confirmLastTry) body.confirm_last_try = true;
    if (req.prompts) body.prompts = true;
    return this.#call("POST", "/v1/auth", { body, signal: req.signal, bounded: false });
  }

  /**
   * Cancels the workflow on `reader`, which must be named (a TypeError
   * otherwise: {@link cancelAll} cancels every workflow): true when one
   * was cancelled, false when none ran.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   * @returns {Promise<boolean>}
   */
  cancel(reader, o = {}) {
    const body = { reader: needString(reader, "reader") };
    return this.#call("POST", "/v1/cancel", { body, signal: o.signal, expect: "none" });
  }

  /**
   * Cancels the workflows on every reader (with a page credential: those
   * it started): true when one was cancelled, false when none ran.
   * @param {{signal?: AbortSignal}} [o]
   * @returns {Promise<boolean>}
   */
  cancelAll(o = {}) {
    return this.#call("POST", "/v1/cancel", { body: { all: true }, signal: o.signal, expect: "none" });
  }

  /**
   * Answers a prompt of a running workflow (a session event with state
   * "prompt"): "continue" uses the last try, "cancel" ends the workflow.
   * True when taken, false when no such prompt waits (answered, timed out,
   * or the workflow ended).
   * @param {string} reader @param {string} id the event's prompt.id
   * @param {"continue" | "cancel"} answer @param {{signal?: AbortSignal}} [o]
   * @returns {Promise<boolean>}
   */
  answerPrompt(reader, id, answer, o = {}) {
    const body = { reader: needString(reader, "reader"), id: needString(id, "id"), answer: needString(oneOf(answer, ANSWERS, "answer"), "answer") };
    return this.#call("POST", "/v1/prompt", { body, signal: o.signal, expect: "none" });
  }

  /** The records waiting for the back office. @param {{signal?: AbortSignal}} [o] */
  queue(o = {}) {
    return this.#call("GET", "/v1/queue", { signal: o.signal });
  }

  /** Sends the queue now (up to 2 minutes; only `signal` bounds it). @param {{signal?: AbortSignal}} [o] */
  sync(o = {}) {
    return this.#call("POST", "/v1/sync", { signal: o.signal, bounded: false });
  }

  /**
   * This terminal's codes of today (code, service, time, state), newest
   * first: no personal data.
   * @param {{signal?: AbortSignal}} [o]
   */
  codesToday(o = {}) {
    return this.#call("GET", "/v1/codes/today", { signal: o.signal });
  }

  /**
   * The card holder's own view of the card in `reader`, after a kiosk
   * authentication of that card.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  kioskView(reader, o = {}) {
    return this.#call("GET", "/v1/kiosk/view", { query: { reader: needString(reader, "reader") }, signal: o.signal });
  }

  /**
   * The card data renewal of the card in `reader` (docs/renewal.md), after
   * an authentication in which the holder's fingerprint matched.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  renewal(reader, o = {}) {
    return this.#call("GET", "/v1/renewal", { query: { reader: needString(reader, "reader") }, signal: o.signal });
  }

  /**
   * Asks the back office for a renewal offer for the card and verifies it.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  renewalCheck(reader, o = {}) {
    return this.#call("POST", "/v1/renewal/check", { body: { reader: needString(reader, "reader") }, signal: o.signal, bounded: false });
  }

  /**
   * Writes the offered update to the card (the holder agreed); answers when
   * it ended (done, failed, interrupted). Not bounded by timeoutMs: the
   * writing runs to its end.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  renewalApply(reader, o = {}) {
    return this.#call("POST", "/v1/renewal/apply", { body: { reader: needString(reader, "reader") }, signal: o.signal, bounded: false });
  }

  /**
   * Puts the offer aside (not now).
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  async renewalDecline(reader, o = {}) {
    await this.#call("POST", "/v1/renewal/decline", { body: { reader: needString(reader, "reader") }, signal: o.signal, expect: "none" });
  }

  /**
   * The e-wallet of the card in `reader` (docs/ewallet.md part 3): balance,
   * maximum, purse counter, the card's logged transactions newest first,
   * and the "update saldo" state, after an authentication in which the
   * holder's fingerprint matched.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  purse(reader, o = {}) {
    return this.#call("GET", "/v1/purse", { query: { reader: needString(reader, "reader") }, signal: o.signal });
  }

  /**
   * Asks the back office for a top-up staged for the holder and verifies
   * it; answers the purse view (topup.state "available" with its amount, or
   * "none" with the reason).
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  topUpCheck(reader, o = {}) {
    return this.#call("POST", "/v1/purse/topup/check", { body: { reader: needString(reader, "reader") }, signal: o.signal, bounded: false });
  }

  /**
   * Credits the offered top-up to the card (the holder agreed); answers when
   * it ended (topup.state done, not-done or pending). Not bounded by
   * timeoutMs: the credit runs to its end.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  topUpApply(reader, o = {}) {
    return this.#call("POST", "/v1/purse/topup/apply", { body: { reader: needString(reader, "reader") }, signal: o.signal, bounded: false });
  }

  /**
   * Puts the offered top-up aside (not now).
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   */
  async topUpDecline(reader, o = {}) {
    await this.#call("POST", "/v1/purse/topup/decline", { body: { reader: needString(reader, "reader") }, signal: o.signal, expect: "none" });
  }

  /**
   * Takes an e-wallet payment from the card in the reader (docs/ewallet.md):
   * `amount` whole rupiah, the merchant's reference, and an idempotency key
   * made once per payment and sent again unchanged on every retry (the
   * agent answers a known key from its request book and never debits
   * twice). Answers {status: "done" | "not-done" | "pending", ...}. Not
   * bounded by timeoutMs: the debit runs to its end.
   * @param {{amount: number, operator: string, idempotencyKey: string, merchantRef?: string, reader?: string,
   *   waitSeconds?: number, confirmLastTry?: boolean, signal?: AbortSignal}} req
   */
  pay(req) {
    if (typeof req !== "object" || req === null) throw new TypeError("kpe-agent client: pay needs {amount, operator, idempotencyKey, ...}");
    if (!Number.isSafeInteger(req.amount)) throw new TypeError("kpe-agent client: amount must be an integer (rupiah)");
    /** @type {Record<string, unknown>} */
    const body = { amount: req.amount, operator: needString(req.operator, "operator"), idempotency_key: needString(req.idempotencyKey, "idempotencyKey") };
    const ref = optString(req.merchantRef, "merchantRef");
    if (ref) body.merchant_ref = ref;
    const reader = optString(req.reader, "reader");
    if (reader) body.reader = reader;
    if (req.waitSeconds !== undefined) {
      if (!Number.isInteger(req.waitSeconds) || req.waitSeconds < 0) throw new TypeError("kpe-agent client: waitSeconds must be an integer >= 0");
      if (req.waitSeconds > 0) body.wait_seconds = req.waitSeconds;
    }
    if (req.confirmLastTry) body.confirm_last_try = true;
    return this.#call("POST", "/v1/pay", { body, signal: req.signal, bounded: false });
  }

  /**
   * The outcome of the payment of `key`; a pending one is settled first
   * when its card is in the reader.
   * @param {string} key @param {{reader?: string, signal?: AbortSignal}} [o]
   */
  payStatus(key, o = {}) {
    /** @type {Record<string, unknown>} */
    const body = { idempotency_key: needString(key, "key") };
    const reader = optString(o.reader, "reader");
    if (reader) body.reader = reader;
    return this.#call("POST", "/v1/pay/status", { body, signal: o.signal, bounded: false });
  }

  /**
   * The KPE's photo (image/jpeg) for the kiosk view. Show it with
   * URL.createObjectURL and revoke that URL when the card leaves.
   * @param {string} reader @param {{signal?: AbortSignal}} [o]
   * @returns {Promise<Blob>}
   */
  kioskPhoto(reader, o = {}) {
    return this.#call("GET", "/v1/kiosk/photo", { query: { reader: needString(reader, "reader") }, signal: o.signal, expect: "blob" });
  }

  /**
   * The QR code (image/png) that opens the back office's verify page
   * with `code`.
   * @param {string} code @param {{signal?: AbortSignal}} [o]
   * @returns {Promise<Blob>}
   */
  kioskQR(code, o = {}) {
    return this.#call("GET", "/v1/kiosk/qr", { query: { code: needString(code, "code") }, signal: o.signal, expect: "blob" });
  }

  /**
   * Follows the agent's event stream until `signal` aborts (it then
   * resolves) or a failure that retrying cannot mend (it rejects with a
   * KpeError: unauthorized, a refusal, a bad-response, or an exception of
   * onEvent). A dropped stream, or an agent that is down, is retried with
   * a doubling delay (retryMinMs to retryMaxMs), resuming with
   * Last-Event-ID. The language and audience are taken at each
   * (re)connection.
   * @param {import("./client.js").EventsOptions} o
   * @returns {Promise<void>}
   */
  events(o) {
    if (typeof o !== "object" || o === null || typeof o.onEvent !== "function") {
      throw new TypeError("kpe-agent client: events needs {onEvent}");
    }
    const min = o.retryMinMs ?? 500;
    const max = o.retryMaxMs ?? 5000;
    if (!(min > 0 && max >= min && Number.isFinite(max))) throw new TypeError("kpe-agent client: want 0 < retryMinMs <= retryMaxMs");
    return this.#follow(o, min, max).catch((e) => {
      throw e instanceof HandlerFailure ? e.error : e;
    });
  }

  /**
   * The stream's loop: connect, read, reconnect.
   * @param {import("./client.js").EventsOptions} o @param {number} min @param {number} max
   */
  async #follow(o, min, max) {
    const { onEvent, onStatus, signal } = o;
    let lastId = o.lastEventId === undefined || o.lastEventId === null ? "" : String(o.lastEventId);
    let lastSeq = Number(lastId) || 0;
    let base = min;
    let delay = base;
    let attempt = 0;
    /** @param {import("./client.js").StreamStatus} s */
    const status = (s) => {
      try {
        onStatus?.(s);
      } catch (e) {
        throw new HandlerFailure(e);
      }
    };
    for (;;) {
      if (signal?.aborted) break;
      attempt++;
      status({ state: "connecting", attempt, lastEventId: lastId });
      /** @type {KpeError | undefined} why the next attempt is needed */
      let err;
      let res;
      try {
        const headers = this.#headers("text/event-stream");
        if (lastId) headers["Last-Event-ID"] = lastId;
        res = await fetch(this.#url("/v1/events"), { headers, signal, credentials: this.#credentials, cache: "no-store", redirect: "manual" });
      } catch (e) {
        if (signal?.aborted) break;
        res = undefined;
        err = this.#own("network", { retriable: true, cause: e });
      }
      if (res) {
        if (!res.ok || res.type === "opaqueredirect") {
          const e = res.type === "opaqueredirect" ? this.#own("bad-response", { status: res.status }) : await this.#apiError(res);
          if (signal?.aborted) break;
          // the agent stopping, or a proxy's 5xx: try again; a refusal
          // (401, 403, 404, 400) stays as it is
          if (!(e.code === "network" || e.status >= 500)) {
            status({ state: "closed", attempt, lastEventId: lastId, error: e });
            throw e;
          }
          err = e;
        } else if (!(res.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
          await res.body?.cancel().catch(() => {});
          const e = this.#own("bad-response", { status: res.status, cause: new Error(`content type ${res.headers.get("Content-Type")}`) });
          status({ state: "closed", attempt, lastEventId: lastId, error: e });
          throw e;
        } else {
          const openedAfter = attempt;
          attempt = 0;
          delay = base;
          /** @type {{error: unknown} | undefined} what ends the stream for good */
          let fatal;
          const parser = new SSEParser(
            (msg) => {
              let ev;
              try {
                ev = JSON.parse(msg.data);
              } catch (e) {
                throw this.#own("bad-response", { status: 200, cause: e });
              }
              if (typeof ev !== "object" || ev === null || Array.isArray(ev)) {
                throw this.#own("bad-response", { status: 200, cause: new Error("event data is not a JSON object") });
              }
              if (!ev.type && msg.type !== "message") ev.type = msg.type;
              if (Number.isInteger(ev.seq) && ev.seq > 0) {
                if (ev.seq < lastSeq) status({ state: "restarted", attempt, lastEventId: lastId });
                lastSeq = ev.seq;
                if (!msg.id) lastId = String(ev.seq);
              }
              try {
                onEvent(ev);
              } catch (e) {
                throw new HandlerFailure(e);
              }
            },
            (id) => {
              if (id) lastId = id;
            },
            (ms) => {
              base = Math.min(Math.max(ms, 1), max);
              delay = base;
            },
          );
          const reader = res.body?.getReader();
          const dec = new TextDecoder();
          try {
            status({ state: "open", attempt: openedAfter, lastEventId: lastId });
            if (!reader) throw new TypeError("no body");
            for (;;) {
              const { value, done } = await reader.read();
              if (done) {
                parser.push(dec.decode());
                break;
              }
              parser.push(dec.decode(value, { stream: true }));
            }
          } catch (e) {
            // a broken connection is retried; a garbled stream or a
            // failing onEvent is not
            if (signal?.aborted) fatal = undefined;
            else if (e instanceof HandlerFailure) fatal = { error: e.error };
            else if (e instanceof KpeError) fatal = { error: e };
            else if (e instanceof RangeError) fatal = { error: this.#own("bad-response", { status: 200, cause: e }) };
          } finally {
            // never leave a reader (and its connection) behind
            reader?.cancel().catch(() => {});
          }
          if (signal?.aborted) break;
          if (fatal) {
            status({ state: "closed", attempt, lastEventId: lastId, error: fatal.error instanceof KpeError ? fatal.error : undefined });
            throw new HandlerFailure(fatal.error);
          }
          err = this.#own("network", { retriable: true, cause: new Error("the event stream ended") });
        }
      }
      status({ state: "retrying", attempt, lastEventId: lastId, error: err, delayMs: delay });
      if (!(await sleep(delay, signal))) break;
      delay = Math.min(delay * 2, max);
    }
    status({ state: "closed", attempt, lastEventId: lastId });
  }
}
