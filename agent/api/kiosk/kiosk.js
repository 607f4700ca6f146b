// The self-service kiosk's page (anjungan KPE; docs/kiosk.md). The agent
// serves it at /kiosk/ with a fresh kiosk credential (an HttpOnly cookie);
// this script talks to the agent only through the JavaScript client, with
// that cookie (credentials: same-origin), and every message it gets from
// the agent is worded for the card holder.
//
// One card session: the attract screen keeps a kiosk authentication
// waiting for the card; the agent's events drive the progress screen; the
// last fingerprint try is asked within the workflow; a recorded session
// shows the holder's own data and the receipt. The session ends when the
// card leaves, on the idle timeout or on "Selesai": the page then loads
// itself again, which clears the DOM and every script state, and stores
// nothing in the browser.

import { createClient, KpeError } from "/v1/client.js";

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const body = document.body;

/** The page's words, by language: the catalogue's kiosk entries. */
const WORDS = JSON.parse($("kiosk-words").textContent || "{}");
const IDLE_MS = (Number(body.dataset.idleTimeout) || 60) * 1000;
const WARN_MS = (Number(body.dataset.idleWarning) || 10) * 1000; // at most half IDLE_MS: the agent's rule
const CARD_WAIT = Math.max(1, Number(body.dataset.cardWait) || 30);
const RECEIPT_QR = body.dataset.receiptQr === "true";
const HEALTH_EVERY_MS = 5000;

/** The words of the card kinds, by the agent's card_kind. */
const KINDS = { kpe: "kind.kpe", "kpe-tambahan": "kind.kpe-tambahan", ktpel: "kind.ktpel", unknown: "kind.unknown" };

/** The API's codes that mean the kiosk cannot serve at all. */
const OUT_OF_SERVICE = new Set([
  "pcsc-unavailable", "no-reader", "reader-in-use", "no-sam", "sam-blocked", "sam-not-activated",
  "sam-counter-behind", "outbox-full", "shutting-down", "no-sensor", "network", "bad-response",
  "forbidden-origin", "forbidden-host", "forbidden-scope", "unknown-service", "bad-request",
]);

/** @type {"id" | "en"} the page's language */
let lang = "id";
const agent = createClient({ credentials: "same-origin", audience: "holder", lang });

/** Everything of this page's life: aborted by the wipe. */
const life = new AbortController();
let wiping = false;

/** The card reader's name (the agent's only card reader). */
let reader = "";
/** The screen on show: attract, oos, progress, prompt, failure, result. */
let screen = "attract";
/** The kiosk authentication running or waiting for a card. */
let session = /** @type {{ctl: AbortController} | null} */ (null);
/** The prompt on screen. */
let prompt = /** @type {{id: string} | null} */ (null);
/** What the screens show, kept to word them again in the other language. */
let shown = {
  /** @type {any} */ health: null,
  healthDown: false,
  /** @type {string[]} */ steps: [],
  current: "",
  /** the progress message: the agent's words, or a key of the page's */
  message: { text: "", key: "" },
  kind: "",
  tries: 0,
  /** @type {any} */ result: null,
  /** @type {any} */ view: null,
  /** @type {any} the card data renewal's view (GET /v1/renewal) */ renewal: null,
  /** @type {any} the card's e-wallet (GET /v1/purse) */ purse: null,
  /** @type {any} the last top-up's outcome in this session (its topup view) */ topupLast: null,
  photo: "",
  qr: "",
  panel: "",
};
/** The object URLs made for the photo and the QR code, revoked by the wipe. */
const objectURLs = [];
let lastTouch = Date.now();
/** When this page last closed its own waiting authentication. */
let lastRestart = 0;
let lastSeq = "";
let stream = /** @type {AbortController | null} */ (null);

// ---- words ---------------------------------------------------------------

/**
 * The word for key in the page's language, its %d and %s filled in order.
 * @param {string} key @param {...(string | number)} args
 */
function t(key, ...args) {
  const s = WORDS[lang]?.[key] ?? WORDS.id?.[key] ?? key;
  let i = 0;
  return s.replace(/%[ds]/g, () => String(args[i++] ?? ""));
}

/** Words every element that names its key (data-t, data-t-aria). */
function applyWords(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = t(/** @type {HTMLElement} */ (el).dataset.t || "");
  for (const el of root.querySelectorAll("[data-t-aria]")) el.setAttribute("aria-label", t(/** @type {HTMLElement} */ (el).dataset.tAria || ""));
  for (const el of root.querySelectorAll("[data-t-alt]")) el.setAttribute("alt", t(/** @type {HTMLElement} */ (el).dataset.tAlt || ""));
  document.title = t("title");
}

/** A date of the card (YYYY-MM-DD) in words: 17 Agustus 1972. */
function date(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || "");
  if (!m) return s || "";
  const months = t("months").split(",");
  return `${Number(m[3])} ${months[Number(m[2]) - 1] ?? m[2]} ${m[1]}`;
}

/** A time of the agent (RFC 3339) in words, in this PC's time zone. */
function dateTime(s) {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s || "";
  const two = (n) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${date(day)} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

// ---- DOM helpers ---------------------------------------------------------

/**
 * An element: attributes (data-t words it), then children (strings are text).
 * @param {string} tag @param {Record<string, string>} [attrs] @param {...(Node | string | null | undefined | false)} kids
 */
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (attrs["data-t"]) e.textContent = t(attrs["data-t"]);
  for (const k of kids) if (k) e.append(k);
  return e;
}

/** A row of a definition list: the label's key and the value (or "not held"). */
function row(key, value) {
  const dd = value ? el("dd", {}, value) : el("dd", { class: "absent", "data-t": "not-held" });
  return [el("dt", { "data-t": key }), dd];
}

/** A definition list of rows. @param {Node[][]} rows */
function dl(...rows) {
  const d = el("dl");
  for (const r of rows) d.append(...r);
  return d;
}

// ---- screens -------------------------------------------------------------

const SCREENS = ["attract", "oos", "progress", "prompt", "failure", "result", "renewal"];

function show(name) {
  screen = name;
  body.dataset.screen = name;
  for (const s of SCREENS) $(s).hidden = s !== name;
  $("cancel").hidden = name !== "progress";
  $("finish").hidden = name !== "result" && name !== "failure" && !(name === "renewal" && renewalEnded());
  $("print").hidden = name !== "result" || shown.panel !== "receipt";
  if (name === "attract" || name === "oos") hideIdle();
  touched();
}

/** The attract screen's note (a busy reader, a card already in). */
function note(text) {
  $("attract-note").textContent = text || "";
  $("attract-note").hidden = !text;
}

function outOfService(message, code) {
  stopSession();
  $("oos-reason").textContent = message;
  $("oos-code").textContent = code;
  show("oos");
}

function failure(e) {
  $("failure-message").textContent = e.message;
  $("failure-code").textContent = e.code;
  show("failure");
}

// ---- the status lights ---------------------------------------------------

/** @param {string} id @param {string} state ok, warn, bad, off, unknown @param {string} text */
function light(id, state, text) {
  const li = $(id);
  li.dataset.state = state;
  /** @type {HTMLElement} */ (li.querySelector(".value")).textContent = text;
}

function renderLights() {
  const h = shown.health;
  if (!h && !shown.healthDown) {
    for (const id of ["light-agent", "light-reader", "light-sam", "light-backoffice"]) light(id, "unknown", t("light.unknown"));
    return;
  }
  if (shown.healthDown || !h) {
    light("light-agent", "bad", t("light.down"));
    for (const id of ["light-reader", "light-sam", "light-backoffice"]) light(id, "unknown", t("light.unknown"));
    return;
  }
  const codes = (h.problems ?? []).map((p) => p.code);
  light("light-agent", h.status === "ok" ? "ok" : "warn", t("light.running"));
  const readerOK = h.pcsc === "ok" && !codes.includes("no-reader") && !codes.includes("pcsc-unavailable");
  light("light-reader", readerOK ? "ok" : "bad", t(readerOK ? "light.ready" : "light.not-ready"));
  const samOK = h.sam?.present && h.sam.state === "active" && !codes.some((c) => c.startsWith("sam-"));
  light("light-sam", samOK ? "ok" : "bad", t(samOK ? "light.ready" : "light.not-ready"));
  const bo = h.back_office;
  if (!bo || bo.state === "disabled") light("light-backoffice", "off", t("light.disabled"));
  else if (bo.state === "offline") light("light-backoffice", "warn", t("light.offline", bo.queued));
  else if (bo.queued > 0) light("light-backoffice", "ok", t("light.online-queued", bo.queued));
  else light("light-backoffice", "ok", t("light.online"));
}

/** Reads the agent's health: the lights, and whether the kiosk can serve. */
async function refreshHealth() {
  let h;
  try {
    h = await agent.health({ signal: life.signal });
  } catch (e) {
    if (wiping || !(e instanceof KpeError)) return;
    shown.healthDown = true;
    renderLights();
    if (screen === "attract" || screen === "oos") outOfService(e.message, e.code);
    return;
  }
  if (!("readers" in h)) {
    // the agent no longer knows this page's credential: it restarted
    reload();
    return;
  }
  shown.health = h;
  shown.healthDown = false;
  renderLights();
  const problems = h.problems ?? [];
  if (problems.length > 0) {
    if (screen === "attract" || screen === "oos") outOfService(problems[0].message, problems.map((p) => p.code).join(", "));
  } else if (screen === "oos") {
    show("attract");
    ready();
  }
}

async function healthLoop() {
  while (!life.signal.aborted) {
    await refreshHealth();
    // a reader that was busy with another program's workflow may be free
    if (screen === "attract" && !session && $("start").hidden) ready();
    await new Promise((resolve) => setTimeout(resolve, HEALTH_EVERY_MS));
  }
}

// ---- the session ---------------------------------------------------------

/**
 * On the attract screen: keep a kiosk authentication waiting for the card,
 * or, when a card is in the reader already (left from the session before,
 * or put in while the reader was busy), offer to start with it.
 */
async function ready() {
  if (wiping || screen !== "attract" || session) return;
  let rs;
  try {
    rs = await agent.readers({ signal: life.signal });
  } catch (e) {
    trouble(e);
    return;
  }
  if (screen !== "attract" || session) return;
  const r = rs.find((x) => x.role === "card");
  if (!r) {
    refreshHealth();
    return;
  }
  reader = r.name;
  if (r.card_present && !r.busy) {
    note(t("attract.card-in"));
    $("start").hidden = false;
    return;
  }
  $("start").hidden = true;
  begin(false);
}

/**
 * Starts a kiosk authentication: waiting for the card (attract screen), or
 * with the card in the reader (start).
 * @param {boolean} now
 */
function begin(now) {
  if (session || wiping) return;
  const ctl = new AbortController();
  life.signal.addEventListener("abort", () => ctl.abort(), { once: true });
  session = { ctl };
  // the language the authentication's answer comes in (for the tests and
  // for anyone diagnosing the page)
  body.dataset.session = lang;
  shown.steps = [];
  shown.current = "";
  shown.message = { text: "", key: "" };
  shown.kind = "";
  shown.tries = 0;
  if (now) progress("detected");
  agent
    .authenticate({ service: "kiosk", reader, waitSeconds: now ? 0 : CARD_WAIT, prompts: true, signal: ctl.signal })
    .then(
      (res) => {
        if (session?.ctl !== ctl) return;
        session = null;
        delete body.dataset.session;
        recorded(res);
      },
      (e) => {
        if (session?.ctl !== ctl) return;
        session = null;
        delete body.dataset.session;
        ended(e);
      },
    );
}

function stopSession() {
  if (session) {
    const s = session;
    session = null;
    delete body.dataset.session;
    s.ctl.abort(); // closing the request cancels the workflow
  }
}

/** The authentication ended without a record. */
function ended(e) {
  if (wiping || !(e instanceof KpeError)) return;
  if (screen === "attract" && (e.code === "cancelled" || e.code === "timeout")) {
    // the wait for the card ended before a card came (another program
    // cancelled it, the agent is stopping): nobody's session failed
    setTimeout(ready, 1000);
    return;
  }
  switch (e.code) {
    case "no-card": // nobody came within the wait: wait again
      if (screen === "attract") ready();
      else if (screen === "progress") wipe();
      return;
    case "card-removed": // the card left: the session is over
      wipe();
      return;
    case "reader-busy":
      if (Date.now() - lastRestart < 3000) {
        // the workflow this page just closed is still ending
        setTimeout(ready, 300);
        return;
      }
      show("attract");
      $("start").hidden = true;
      note(e.message);
      return; // the reader's next session event says when it is free
  }
  trouble(e);
}

/** A failure of any call: out of service, a restart, or the holder's failure. */
function trouble(e) {
  if (wiping || !(e instanceof KpeError)) return;
  if (e.code === "unauthorized") {
    reload(); // the agent restarted and forgot this page's credential
    return;
  }
  if (OUT_OF_SERVICE.has(e.code)) {
    outOfService(e.message, e.code);
    if (e.code === "network") {
      shown.healthDown = true;
      renderLights();
    }
    return;
  }
  failure(e);
}

/** The progress screen at state (a session event's). */
function progress(state, ev = {}) {
  const order = ["identified", "authenticated", "fingerprint", "verified"];
  if (ev.card_kind) shown.kind = ev.card_kind;
  if (ev.tries_left) shown.tries = ev.tries_left;
  const at = state === "recorded" ? order.length : order.indexOf(state);
  shown.steps = at < 0 ? [] : order.slice(0, at);
  shown.current = state;
  if (ev.message) shown.message = { text: ev.message, key: "" };
  else if (state === "verified") shown.message = { text: "", key: "progress.recording" };
  else if (state !== "fingerprint") shown.message = { text: "", key: "progress.reading" };
  renderProgress();
  if (screen !== "progress") show("progress");
}

function renderProgress() {
  for (const li of $("steps").querySelectorAll("li")) {
    const step = /** @type {HTMLElement} */ (li).dataset.step || "";
    /** @type {HTMLElement} */ (li).dataset.state = shown.steps.includes(step) ? "done" : step === shown.current ? "active" : "todo";
  }
  $("progress-message").textContent = shown.message.text || (shown.message.key ? t(shown.message.key) : "");
  const kind = KINDS[shown.kind];
  $("step-kind").textContent = kind ? `(${t(kind)})` : "";
  $("step-tries").textContent = shown.tries ? t("step.tries", shown.tries) : "";
}

function showPrompt(ev) {
  prompt = { id: ev.prompt.id };
  if (ev.tries_left) shown.tries = ev.tries_left;
  $("prompt-message").textContent = ev.message || "";
  show("prompt");
}

async function answer(a) {
  const p = prompt;
  prompt = null;
  if (!p) return;
  if (a === "continue") show("progress");
  try {
    await agent.answerPrompt(reader, p.id, a, { signal: life.signal });
  } catch (e) {
    trouble(e);
  }
  // false: the prompt no longer waits; the authentication's end says why
}

/** One of the agent's events. */
function onEvent(ev) {
  if (wiping) return;
  if (ev.seq) lastSeq = String(ev.seq);
  if (ev.type === "sam" || ev.type === "service" || ev.type === "reader" || ev.type === "sync") {
    refreshHealth();
    return;
  }
  if (ev.type === "renewal") {
    if (reader && ev.reader === reader && shown.result && !applying) refreshRenewal();
    return;
  }
  if (ev.type !== "session" || !reader || ev.reader !== reader) return;
  const inSession = screen !== "attract" && screen !== "oos";
  if (ev.state === "detected" && (interruptedShown() || (screen === "result" && !crediting && shown.topupLast?.state === "pending"))) {
    // the card is back after an interrupted renewal: a fresh page offers
    // to start with it, and the agent tells what the card holds
    wipe();
    return;
  }
  if (inSession) touched(); // the holder is at the card and the sensor
  switch (ev.state) {
    case "removed":
    case "idle":
      // a renewal's writing answers how it ended (interrupted: insert the
      // card again); its end screen stays until Selesai or the idle timeout
      if (inSession && screen === "renewal" && (applying || renewalEnded())) return;
      // so does a top-up's credit (pending: insert the card again)
      if (inSession && screen === "result" && (crediting || shown.topupLast?.state === "pending")) return;
      if (inSession) wipe();
      else if (screen === "attract") {
        note("");
        $("start").hidden = true;
        ready();
      }
      return;
    case "prompt":
      if (session && ev.prompt?.kind === "last-try") showPrompt(ev);
      return;
    case "failed":
    case "recorded":
      // the authentication's answer follows; a workflow of another
      // program has ended: the reader may be free
      if (!session && screen === "attract") ready();
      else if (session && ev.state === "recorded") progress("recorded", ev);
      return;
  }
  if (session) progress(ev.state, ev);
  else if (screen === "attract" && ev.state === "detected") ready();
}

/** Follows the agent's events in the page's language. */
function follow() {
  stream?.abort();
  const ctl = new AbortController();
  life.signal.addEventListener("abort", () => ctl.abort(), { once: true });
  stream = ctl;
  agent
    .events({
      signal: ctl.signal,
      lastEventId: lastSeq || undefined,
      onEvent,
      onStatus(s) {
        if (s.state === "restarted") reload();
        else if (s.state === "open") {
          refreshHealth();
          if (screen === "attract") ready();
        } else if (s.state === "retrying" && s.error?.code === "network" && (screen === "attract" || screen === "oos")) {
          outOfService(s.error.message, s.error.code);
          shown.healthDown = true;
          renderLights();
        }
      },
    })
    .catch(trouble);
}

// ---- the result ----------------------------------------------------------

/** A recorded authentication: the holder's own data and the receipt. */
async function recorded(res) {
  shown.result = res;
  try {
    const view = await agent.kioskView(reader, { signal: life.signal });
    if (view.photo) {
      shown.photo = objectURL(await agent.kioskPhoto(reader, { signal: life.signal }));
    }
    if (RECEIPT_QR) shown.qr = objectURL(await agent.kioskQR(res.code, { signal: life.signal }));
    shown.view = view;
  } catch (e) {
    if (e instanceof KpeError && e.code === "not-available") wipe(); // the card left meanwhile
    else trouble(e);
    return;
  }
  renderResult();
  refreshRenewal();
  refreshPurse(true);
  const first = shown.view.kind === "ktpel" ? "ktpel" : shown.view.kind === "kpe-tambahan" ? "tambahan" : "profile";
  panel(first);
  show("result");
}

/** @param {Blob} b */
function objectURL(b) {
  const u = URL.createObjectURL(b);
  objectURLs.push(u);
  return u;
}

/** The panels each kind of card has, in order. */
function panelsOf(kind) {
  if (kind === "ktpel") return ["ktpel", "receipt"];
  if (kind === "kpe-tambahan") return ["tambahan", "services", "receipt"];
  return ["profile", "services", "receipt"];
}

function panel(name) {
  shown.panel = name;
  for (const b of $("tabs").querySelectorAll("button")) {
    const p = /** @type {HTMLElement} */ (b).dataset.panel || "";
    b.setAttribute("aria-current", p === name ? "page" : "false");
  }
  for (const p of ["profile", "services", "tambahan", "ktpel", "receipt"]) $("panel-" + p).hidden = p !== name;
  $("print").hidden = name !== "receipt";
  body.dataset.panel = name;
}

function renderResult() {
  const v = shown.view;
  const have = panelsOf(v.kind);
  for (const b of $("tabs").querySelectorAll("button")) {
    /** @type {HTMLElement} */ (b).hidden = !have.includes(/** @type {HTMLElement} */ (b).dataset.panel || "");
  }
  $("panel-profile").replaceChildren(...(v.kind === "kpe" ? profile(v) : []));
  $("panel-services").replaceChildren(...(v.kind !== "ktpel" ? services(v) : []));
  $("panel-tambahan").replaceChildren(...(v.kind === "kpe-tambahan" ? tambahan(v) : []));
  $("panel-ktpel").replaceChildren(...(v.kind === "ktpel" ? ktpel() : []));
  $("panel-receipt").replaceChildren(...receipt(shown.result));
}

function verifiedLine(v) {
  return v.verified ? el("p", { class: "verified", "data-t": "verified" }) : null;
}

function identity(v) {
  const id = v.identity ?? {};
  const gender = { L: "gender.male", P: "gender.female" }[id.gender];
  const birth = [id.birth_place, date(id.birth_date)].filter(Boolean).join(", ");
  const rows = [row("field.name", id.name)];
  if (v.kind === "kpe") rows.push(row("field.nip", id.nip));
  rows.push(row("field.birth", birth), row("field.gender", gender ? t(gender) : ""), row("field.address", id.address));
  const photo = shown.photo ? el("img", { class: "photo", src: shown.photo, alt: t("photo.alt"), "data-t-alt": "photo.alt" }) : null;
  return el("div", { class: "person" }, photo, dl(...rows));
}

function profile(v) {
  const out = [verifiedLine(v), el("h3", { "data-t": "profile.identity" }), identity(v), el("h3", { "data-t": "profile.employment" })];
  const e = v.employment;
  if (e) {
    const pangkat = [e.pangkat, e.golongan_ruang].filter(Boolean).join(", ");
    const units = (e.work_units ?? []).map((u) => u.name).join(" · ");
    out.push(dl(
      row("field.status", e.status), row("field.pangkat", pangkat), row("field.tmt-pangkat", date(e.tmt_pangkat)),
      row("field.jabatan", e.jabatan), row("field.tmt-jabatan", date(e.tmt_jabatan)),
      row("field.parent-agency", e.parent_agency), row("field.working-agency", e.working_agency),
      row("field.work-unit", units), row("field.work-location", e.work_location),
    ));
  } else out.push(el("p", { class: "absent", "data-t": "profile.no-employment" }));
  out.push(el("h3", { "data-t": "profile.family" }));
  const fam = v.family ?? [];
  if (fam.length === 0) out.push(el("p", { class: "absent", "data-t": "family.none" }));
  else {
    const head = el("tr", {}, ...["family.relation", "family.name", "family.birth-date", "family.dependant", "family.tambahan"].map((k) => el("th", { scope: "col", "data-t": k })));
    const rows = fam.map((m) =>
      el("tr", {},
        el("td", {}, m.relation || t(m.role === "spouse" ? "role.spouse" : "role.child")),
        el("td", {}, m.name),
        el("td", {}, date(m.birth_date)),
        el("td", { "data-t": m.dependant ? "yes" : "no" }),
        el("td", { "data-t": m.kpe_tambahan ? "yes" : "no" })));
    out.push(el("div", { class: "table" }, el("table", { class: "family" }, el("thead", {}, head), el("tbody", {}, ...rows))));
  }
  return out.filter(Boolean);
}

function services(v) {
  const b = v.benefits ?? {};
  return [
    el("h3", { "data-t": "services.askes" }),
    dl(row("field.number", b.askes_bpjs), row("field.class", "")),
    el("h3", { "data-t": "services.taspen" }),
    dl(row("field.number", b.taspen)),
    el("p", { class: "absent", "data-t": "services.taspen-benefit" }),
    el("h3", { "data-t": "services.taperum" }),
    dl(row("field.number", b.taperum), row("field.taperum-status", b.taperum_status), row("field.bank", b.bank), row("field.account", b.account_masked)),
    el("p", { class: "absent", "data-t": "services.taperum-benefit" }),
    el("p", { class: "note", "data-t": "services.note" }),
  ];
}

function tambahan(v) {
  const link = v.tambahan ?? {};
  return [
    verifiedLine(v),
    el("h3", { "data-t": "tambahan.own" }),
    identity(v),
    el("h3", { "data-t": "tambahan.link" }),
    dl(row("tambahan.relation", link.relation ? t(link.relation === "spouse" ? "role.spouse" : "role.child") : ""), row("tambahan.nip", link.nip)),
  ].filter(Boolean);
}

function ktpel() {
  return [el("p", { class: "verified", "data-t": "ktpel.confirmed" }), el("p", { class: "lead", "data-t": "ktpel.rules" })];
}

function receipt(res) {
  const qr = shown.qr ? el("img", { class: "qr", id: "receipt-qr", src: shown.qr, alt: t("receipt.qr-alt"), "data-t-alt": "receipt.qr-alt" }) : null;
  return [
    el("h3", { "data-t": "receipt.title" }),
    el("p", { "data-t": "receipt.done" }),
    el("p", { class: "code-label", "data-t": "receipt.code" }),
    el("p", { class: "code", id: "receipt-code" }, res.code),
    qr,
    qr ? el("p", { class: "small", "data-t": "receipt.scan" }) : null,
    dl(row("receipt.service", t("receipt.service-kiosk")), row("receipt.time", dateTime(res.time))),
    el("p", { class: "small", "data-t": "receipt.keep" }),
  ].filter(Boolean);
}

// ---- the card data renewal (docs/renewal.md) -----------------------------

/** The renewal is being written: the card must stay, the session too. */
let applying = false;

/** The renewal's last view has ended (done, failed, interrupted). */
function renewalEnded() {
  const st = shown?.renewal?.state;
  return st === "done" || st === "failed" || st === "interrupted";
}

/** The renewal's writing was interrupted (the card left) and says so. */
function interruptedShown() {
  return screen === "renewal" && !applying && shown?.renewal?.state === "interrupted";
}

/**
 * The card may be back already when the writing's answer comes (the
 * holder was quick): then as on its insertion.
 */
async function cardBack() {
  try {
    const rs = await agent.readers({ signal: life.signal });
    if (interruptedShown() && rs.some((x) => x.name === reader && x.card_present && !x.busy)) wipe();
  } catch {
    // the reader's next event says when the card is back
  }
}

/**
 * Asks the agent for the renewal of the card: the agent checks the back
 * office by itself after the authentication and tells of each change
 * (events of type renewal). Without one (not a KPE, renewal off) nothing
 * shows.
 */
/** The number of the newest renewal question: an older answer is stale. */
let renewalAsked = 0;

async function refreshRenewal() {
  const n = ++renewalAsked;
  try {
    const v = await agent.renewal(reader, { signal: life.signal });
    // answers can come back out of order: a late "checking" must not
    // bring the banner back after "none"
    if (n === renewalAsked) renewalShown(v);
  } catch (e) {
    if (!(e instanceof KpeError && e.code === "not-available")) trouble(e);
  }
}

/** Shows the renewal's view: the banner on the result, or its screen. */
function renewalShown(v) {
  shown.renewal = v;
  // a back office out of reach is one quiet line; nothing staged, none
  const quiet = v.state === "none" && (v.reason === "offline" || v.reason === "timeout");
  $("renewal-banner").hidden = !(v.state === "checking" || v.state === "available" || quiet);
  $("renewal-checking").hidden = v.state !== "checking";
  $("renewal-available").hidden = v.state !== "available";
  $("renewal-quiet").hidden = !quiet;
  $("renewal-quiet").textContent = quiet ? v.message || "" : "";
  // a renewal resumed from the journal, or one refused: its own screen
  if (screen === "renewal" || (screen === "result" && (v.state === "done" || v.state === "failed"))) {
    renderRenewal();
    show("renewal");
  }
}

/** Renders the renewal screen for its state. */
function renderRenewal() {
  const v = shown.renewal;
  if (!v) return;
  const part = v.state === "writing" || applying ? "writing" : v.state === "available" ? "offer" : v.state;
  for (const p of ["offer", "writing", "done", "failed", "interrupted"]) $("renewal-" + p).hidden = p !== part;
  $("renewal-was-interrupted").hidden = !v.interrupted;
  fields($("renewal-fields"), v.card || [], v.new || []);
  $("renewal-code").textContent = v.code || "";
  $("renewal-failed-message").textContent = v.message || "";
  $("renewal-interrupted-message").textContent = v.message || "";
  $("finish").hidden = !renewalEnded();
}

/**
 * Fills the comparison's rows: each field's label, its value on the card
 * and its new value (the agent gives both sides the same fields in the
 * same order). The changed rows come first, marked, so that a landscape
 * screen shows every change before the list scrolls.
 */
function fields(tbody, card, fresh) {
  const cell = (f) => {
    const td = f?.value ? el("td", {}, f.value) : el("td", { class: "absent", "data-t": "not-held" });
    if (f?.changed) td.setAttribute("aria-label", (td.textContent || "") + " (" + t("renewal.changed") + ")");
    return td;
  };
  const rows = fresh.map((f, i) => el("tr", f.changed ? { class: "changed" } : {}, el("th", { scope: "row" }, f.label), cell(card[i]), cell(f)));
  const changed = rows.filter((_, i) => fresh[i].changed);
  tbody.replaceChildren(...changed, ...rows.filter((_, i) => !fresh[i].changed));
}

/** The holder agreed: write the card, then show how it ended. */
async function applyRenewal() {
  if (applying) return;
  applying = true;
  renderRenewal();
  try {
    const v = await agent.renewalApply(reader, { signal: life.signal });
    applying = false;
    shown.renewal = v;
    renderRenewal();
    if (v.state === "interrupted") cardBack();
  } catch (e) {
    applying = false;
    if (e instanceof KpeError && (e.code === "not-available" || e.code === "card-removed")) wipe();
    else trouble(e);
  }
}

/** Not now: back to the holder's data. */
async function declineRenewal() {
  try {
    await agent.renewalDecline(reader, { signal: life.signal });
  } catch (e) {
    if (!(e instanceof KpeError && e.code === "not-available")) trouble(e);
  }
  $("renewal-banner").hidden = true;
  show("result");
  panel(shown.panel || "profile");
}

// ---- the e-wallet: balance and "update saldo" (docs/ewallet.md) ---------

/** A top-up is being credited: the card must stay, the session too. */
let crediting = false;

/** Whole rupiah, grouped as the language writes them. @param {number} n */
function rupiah(n) {
  return "Rp " + new Intl.NumberFormat(lang === "en" ? "en-US" : "id-ID").format(n);
}

/**
 * Asks the agent for the card's e-wallet (a KPE with a purse, the e-wallet
 * on; otherwise nothing shows) and, when check, for a top-up waiting for
 * the holder.
 * @param {boolean} check
 */
async function refreshPurse(check) {
  try {
    const v = await agent.purse(reader, { signal: life.signal });
    purseShown(v);
    if (check && v.topup.state === "none" && v.topup.reason !== "off") {
      purseShown(await agent.topUpCheck(reader, { signal: life.signal }));
    }
  } catch (e) {
    if (!(e instanceof KpeError && e.code === "not-available")) trouble(e);
  }
}

/** @param {any} v */
function purseShown(v) {
  if (!shown) return;
  shown.purse = v;
  renderPurse();
}

/** Renders the e-wallet box: balance, the top-up, the card's log. */
function renderPurse() {
  const v = shown?.purse;
  $("purse").hidden = !v;
  if (!v) return;
  $("purse-balance").textContent = rupiah(v.balance);
  $("purse-max").textContent = rupiah(v.max_balance);
  const last = shown.topupLast;
  const offer = !crediting && v.topup.state === "available";
  $("topup-offer").hidden = !offer;
  $("topup-amount").textContent = offer ? rupiah(v.topup.amount || 0) : "";
  $("topup-crediting").hidden = !crediting;
  const ended = !crediting && last ? last.state : "";
  $("topup-done").hidden = ended !== "done";
  $("topup-new-balance").textContent = ended === "done" ? rupiah(v.balance) : "";
  $("topup-code").textContent = ended === "done" ? last.code || "" : "";
  $("topup-not-done").hidden = ended !== "not-done";
  $("topup-not-done-message").textContent = ended === "not-done" ? last.message || "" : "";
  $("topup-pending").hidden = ended !== "pending";
  $("topup-pending-message").textContent = ended === "pending" ? last.message || "" : "";
  const quiet = !crediting && !offer && v.topup.state === "none" && v.topup.reason && v.topup.reason !== "off" && !(ended === "done" && v.topup.reason === "none");
  $("topup-quiet").hidden = !quiet;
  $("topup-quiet").textContent = quiet ? v.topup.message || "" : "";
  const rows = (v.transactions || []).map((x) =>
    el("tr", {}, el("td", {}, dateTime(x.time)), el("td", {}, t(x.kind === "credit" ? "purse.credit" : "purse.debit")),
      el("td", {}, rupiah(x.amount)), el("td", {}, rupiah(x.balance_after))));
  $("purse-rows").replaceChildren(...rows);
  $("purse-empty").hidden = rows.length > 0;
  $("purse-log").hidden = rows.length === 0;
}

/** The holder said yes: credit the card, then show how it ended. */
async function applyTopUp() {
  if (crediting) return;
  crediting = true;
  renderPurse();
  try {
    const v = await agent.topUpApply(reader, { signal: life.signal });
    crediting = false;
    shown.topupLast = v.topup;
    purseShown(v);
    // one credit per authorisation: ask for the next staged top-up
    if (v.topup.state === "done") purseShown(await agent.topUpCheck(reader, { signal: life.signal }));
  } catch (e) {
    crediting = false;
    if (e instanceof KpeError && (e.code === "not-available" || e.code === "card-removed")) wipe();
    else trouble(e);
  }
}

/** Not now. */
async function declineTopUp() {
  try {
    await agent.topUpDecline(reader, { signal: life.signal });
    purseShown(await agent.purse(reader, { signal: life.signal }));
  } catch (e) {
    if (!(e instanceof KpeError && e.code === "not-available")) trouble(e);
  }
}

// ---- the idle timeout and the end of a session ---------------------------

function touched() {
  lastTouch = Date.now();
  hideIdle();
}

function hideIdle() {
  $("idle").hidden = true;
}

function checkIdle() {
  if (wiping || screen === "attract" || screen === "oos") return;
  if (applying || crediting) {
    touched(); // the card is being written: the session never ends meanwhile
    return;
  }
  const idle = Date.now() - lastTouch;
  if (idle >= IDLE_MS) {
    wipe();
    return;
  }
  if (idle >= IDLE_MS - WARN_MS) {
    $("idle-count").textContent = t("idle.count", Math.ceil((IDLE_MS - idle) / 1000));
    $("idle").hidden = false;
  }
}

/**
 * Ends the session: the running authentication is closed (the agent
 * cancels it), the object URLs revoked, the DOM emptied, and the page
 * loaded again: a fresh document, a fresh credential, no script state.
 */
function wipe() {
  if (wiping) return;
  wiping = true;
  life.abort();
  for (const u of objectURLs.splice(0)) URL.revokeObjectURL(u);
  shown = /** @type {any} */ (null);
  document.body.replaceChildren();
  location.replace("/kiosk/");
}

/** The agent forgot this page's credential: load the page again. */
function reload() {
  wipe();
}

// ---- the language --------------------------------------------------------

/** @param {string} l */
function setLang(l) {
  if (l === lang || (l !== "id" && l !== "en") || !WORDS[l]) return;
  lang = l;
  agent.lang = l;
  document.documentElement.lang = l;
  for (const b of document.querySelectorAll(".lang button")) {
    b.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (b).dataset.lang === l));
  }
  applyWords();
  renderLights();
  renderProgress();
  if (session && screen === "attract") {
    // the authentication waiting for the card words its answer in the
    // language it was started with: start it again in this one
    lastRestart = Date.now();
    stopSession();
    setTimeout(ready, 300);
  }
  if (shown.view) {
    const p = shown.panel;
    renderResult();
    panel(p);
  }
  // the renewal's labels and reasons are the agent's words: ask again
  if (shown.renewal && !applying) refreshRenewal();
  // the top-up's reasons too
  if (shown.purse && !crediting) refreshPurse(false);
  // the event stream's words are chosen when it connects
  follow();
}

// ---- start ---------------------------------------------------------------

function wire() {
  for (const b of document.querySelectorAll(".lang button")) {
    b.addEventListener("click", () => setLang(/** @type {HTMLElement} */ (b).dataset.lang || "id"));
  }
  $("start").addEventListener("click", () => {
    note("");
    $("start").hidden = true;
    begin(true);
  });
  $("cancel").addEventListener("click", () => {
    // the agent cancels only a named reader's workflow; without one,
    // closing the authentication's request ends it
    if (reader) agent.cancel(reader, { signal: life.signal }).catch(trouble);
    else session?.ctl.abort();
  });
  $("prompt-continue").addEventListener("click", () => answer("continue"));
  $("prompt-cancel").addEventListener("click", () => answer("cancel"));
  $("finish").addEventListener("click", wipe);
  $("print").addEventListener("click", () => window.print());
  $("idle-continue").addEventListener("click", touched);
  $("renewal-open").addEventListener("click", () => {
    renderRenewal();
    show("renewal");
  });
  $("renewal-apply").addEventListener("click", applyRenewal);
  $("topup-apply").addEventListener("click", applyTopUp);
  $("topup-decline").addEventListener("click", declineTopUp);
  $("renewal-decline").addEventListener("click", declineRenewal);
  for (const b of $("tabs").querySelectorAll("button")) {
    b.addEventListener("click", () => panel(/** @type {HTMLElement} */ (b).dataset.panel || "profile"));
  }
  for (const type of ["pointerdown", "touchstart", "keydown", "wheel"]) {
    document.addEventListener(type, touched, { capture: true, passive: true });
  }
  setInterval(checkIdle, 250);
  // a page kept by the browser's history cache would show the last holder
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) location.replace("/kiosk/");
  });
}

wire();
applyWords();
renderLights();
follow();
healthLoop();
ready();
