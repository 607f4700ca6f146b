// The counter screen (/loket/; its design and threat model are in the docs):
// the clerk chooses the service, enters the clerk ID once per shift, runs an
// authentication and follows it, answers the last-try prompt, prints the ASKES
// form with the code, and sees today's codes. It talks to the agent through the
// JavaScript client only, with the counter credential (an HttpOnly cookie the
// page never sees). The clerk ID and the form live in this page's memory and are
// gone after a reload; the one thing kept in sessionStorage is an unsettled
// payment attempt (its key, amount and merchant reference: no personal data),
// so that a reload retries it with the same key instead of debiting again.

import { createClient, KpeError } from "/v1/client.js";

const $ = (id) => document.getElementById(id);
const body = document.body;

/** @type {Record<string, Record<string, string>>} the page's words, both languages */
const WORDS = JSON.parse(body.dataset.words || "{}");
let lang = body.dataset.lang === "en" ? "en" : "id";

/** The words of each step of a session (the agent's states). */
const STEPS = {
  detected: "step.detected",
  identified: "step.identified",
  authenticated: "step.authenticated",
  fingerprint: "step.fingerprint",
  prompt: "step.prompt",
  verified: "step.verified",
  recorded: "step.recorded",
  removed: "step.removed",
  failed: "step.failed",
};
const SERVICES = {
  askes: "service.askes",
  taspen: "service.taspen",
  bapertarum: "service.bapertarum",
  kiosk: "service.kiosk",
};
const CODE_STATES = {
  queued: "codes.state.queued",
  synced: "codes.state.synced",
  rejected: "codes.state.rejected",
};
const LINK = {
  connecting: "link.connecting",
  open: "link.open",
  restarted: "link.open",
  retrying: "link.retrying",
  closed: "link.closed",
};
const FORM_VERIFIED = { yes: "form.verified", no: "form.not-verified" };
const OPERATOR = /^[A-Za-z0-9._@-]{1,64}$/;
/** How long the agent waits for the card, in seconds. */
const WAIT_CARD = 60;
/** Today's codes are read again this often (the back office takes them in the background). */
const CODES_EVERY_MS = 30000;

const agent = createClient({ credentials: "same-origin", audience: "clerk", lang });

/** The clerk ID of this shift: page memory only. */
let operator = "";
/** The running authentication: {reader, service, ctl, prefill}. */
let running = null;
/** The prompt on screen: {reader, id}. */
let prompt = null;
/** The event stream's AbortController. */
let stream = null;
/** The QR code's object URL, revoked when the form is cleared. */
let qrURL = "";
/** The terminal's ID, for the printed form. */
let terminalID = "";
/** The last list of today's codes, to word it again on a language switch. */
let codes = null;
let loggedOut = false;

/** A word of the page in the current language. */
function t(key) {
  return WORDS[lang]?.[key] ?? WORDS.id?.[key] ?? key;
}

function translate() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t(el.dataset.tLabel));
  $("lang-id").setAttribute("aria-pressed", String(lang === "id"));
  $("lang-en").setAttribute("aria-pressed", String(lang === "en"));
}

/** An error for the clerk: the agent's words and, for the technician, the code. */
function describe(err) {
  if (err instanceof KpeError) {
    let s = `${err.message} (${err.code})`;
    if (err.triesLeft !== undefined) s += ` [${err.triesLeft}]`;
    return s;
  }
  return String(err?.message ?? err);
}

function say(text, kind = "info") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
}

/** The credential is gone (expired, the agent restarted): say how to log in again. */
function loggedOutNow() {
  if (loggedOut) return;
  loggedOut = true;
  stream?.abort();
  running?.ctl.abort();
  clearForm();
  operator = "";
  $("app").hidden = true;
  $("login-reason").dataset.t = "login.needed";
  $("login").hidden = false;
  translate();
}

function isUnauthorized(err) {
  return err instanceof KpeError && (err.code === "unauthorized" || err.code === "forbidden-scope");
}

// --- the shift ----------------------------------------------------------

function showShift() {
  const on = operator !== "";
  $("shift-form").hidden = on;
  $("shift-current").hidden = !on;
  $("operator-name").textContent = operator;
  $("work").hidden = !on;
  $("pay").hidden = !on;
}

$("shift-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("operator").value.trim();
  const ok = OPERATOR.test(v);
  $("shift-error").hidden = ok;
  if (!ok) return;
  operator = v;
  $("operator").value = "";
  showShift();
  $("start").focus();
});

$("shift-change").addEventListener("click", () => {
  if (running || paying) return;
  // the clerk signs out of the page: the next one starts with no payment attempt
  if (payAttempt) clearPay();
  operator = "";
  showShift();
  $("operator").focus();
});

// --- readers ------------------------------------------------------------

async function loadReaders() {
  const list = (await agent.readers()).filter((r) => r.role === "card");
  const sel = $("reader");
  const keep = sel.value;
  sel.replaceChildren(...list.map((r) => new Option(r.name, r.name)));
  if (list.some((r) => r.name === keep)) sel.value = keep;
  sel.hidden = list.length === 0;
  $("reader-none").hidden = list.length > 0;
  return list;
}

function reader() {
  return $("reader").value || undefined;
}

// --- the authentication ---------------------------------------------------

function step(ev) {
  const li = document.createElement("li");
  li.dataset.state = ev.state;
  let text = t(STEPS[ev.state] ?? ev.state);
  const detail = ev.message ?? ev.error?.message;
  if (detail) text += `: ${detail}`;
  if (ev.tries_left) text += ` [${ev.tries_left}]`;
  li.textContent = text;
  $("progress").append(li);
}

function showPrompt(question, text) {
  prompt = question;
  $("prompt-text").textContent = text;
  $("prompt").hidden = false;
  $("prompt-continue").focus();
}

function hidePrompt() {
  prompt = null;
  $("prompt").hidden = true;
}

async function answer(a) {
  const p = prompt;
  hidePrompt();
  if (!p) return;
  try {
    await agent.answerPrompt(p.reader, p.id, a);
  } catch (err) {
    if (isUnauthorized(err)) return loggedOutNow();
    say(describe(err), "error");
  }
}

$("prompt-continue").addEventListener("click", () => answer("continue"));
$("prompt-cancel").addEventListener("click", () => answer("cancel"));

function service() {
  return document.querySelector('input[name="service"]:checked')?.value ?? "askes";
}

function busy(on) {
  $("start").disabled = on;
  $("cancel").disabled = !on;
  $("shift-change").disabled = on;
  for (const el of document.querySelectorAll('input[name="service"]')) el.disabled = on;
  $("reader").disabled = on;
}

/** Reads the ASKES form from the card in the running session's reader. */
async function loadPrefill(run) {
  if (run.prefill) return run.prefill;
  try {
    run.prefill = await agent.prefill(run.reader);
  } catch (err) {
    if (isUnauthorized(err)) loggedOutNow();
    run.prefill = null;
  }
  return run.prefill;
}

$("auth").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (running || !operator) return;
  const run = { reader: reader(), service: service(), ctl: new AbortController(), prefill: null };
  running = run;
  busy(true);
  clearForm();
  hidePrompt();
  $("progress").replaceChildren();
  $("result").hidden = true;
  hideRenewal();
  hidePurse();
  $("code").textContent = "";
  say(t("waiting-card"));
  try {
    const res = await agent.authenticate({ service: run.service, operator, reader: run.reader, waitSeconds: WAIT_CARD, prompts: true, signal: run.ctl.signal });
    say(res.message, "ok");
    $("code").textContent = res.code;
    $("result").hidden = false;
    if (res.card_kind === "kpe") {
      offerRenewal(res.reader);
      loadPurse(res.reader);
    }
    if (run.service === "askes") {
      run.reader = res.reader;
      await showForm(await loadPrefill(run), res);
    }
    loadCodes();
  } catch (err) {
    if (run.ctl.signal.aborted) return;
    if (isUnauthorized(err)) return loggedOutNow();
    say(describe(err), "error");
  } finally {
    hidePrompt();
    if (running === run) running = null;
    busy(false);
  }
});

$("cancel").addEventListener("click", async () => {
  const run = running;
  if (!run) return;
  try {
    // the agent ends the workflow; the authentication then fails with
    // "cancelled". Without a reader chosen, closing the request ends it
    // (a cancel names its reader: never every workflow).
    if (!run.reader || !(await agent.cancel(run.reader))) run.ctl.abort();
  } catch (err) {
    run.ctl.abort();
    say(describe(err), "error");
  }
});

// --- the card's e-wallet balance (docs/ewallet.md) --------------------------

/** The balance shown: {reader, balance} (null none). */
let purseShown = null;

function money(n) {
  return n.toLocaleString(lang === "en" ? "en-GB" : "id-ID");
}

function showPurse() {
  $("purse-line").hidden = !purseShown;
  $("purse-balance").textContent = purseShown ? money(purseShown.balance) : "";
}

function hidePurse() {
  purseShown = null;
  showPurse();
}

/**
 * After a KPE's authentication: the card's balance as the agent read it
 * in that card session (GET /v1/purse). A card without a purse, the
 * e-wallet off or the card gone: nothing is shown.
 */
async function loadPurse(r) {
  try {
    const v = await agent.purse(r);
    purseShown = { reader: r, balance: v.balance };
  } catch (err) {
    if (isUnauthorized(err)) return loggedOutNow();
    purseShown = null;
  }
  showPurse();
}

// --- e-wallet payments (docs/ewallet.md) ----------------------------------

/**
 * The payment attempt the panel shows: its idempotency key is made once,
 * here, and sent again unchanged by Retry, so that the agent answers a
 * retry from its request book and never debits the card twice. While an
 * attempt is shown the form is locked: "Terima pembayaran" cannot make a
 * second key for the same purchase (after a pending or failed answer the
 * first may have gone through); only Retry (the same key) or "Pembayaran
 * baru" (a new purchase, which clears the form) go on (docs/loket.md).
 * @type {{key: string, amount: number, ref: string, reader: string} | null}
 */
let payAttempt = null;
let paying = false;
/** The last payment answer, to word it again on a language switch. */
let payShown = null;
/**
 * The sessionStorage key of the unsettled attempt. It is written before the
 * attempt is sent and removed once it settles (done, not done), on
 * "Pembayaran baru" and on "Ganti petugas": a reload or a lost answer brings
 * back the same key, never a new one for the same purchase (docs/loket.md).
 */
const PAY_STORE = "kpe-loket.pay-attempt";
const PAY_KEY = /^loket-[0-9a-f]{32}$/;

/** Keeps the attempt (no personal data: the key, amount, reference and reader's name), or forgets it. */
function storePay(a) {
  try {
    if (a) sessionStorage.setItem(PAY_STORE, JSON.stringify({ key: a.key, amount: a.amount, ref: a.ref, reader: a.reader ?? "" }));
    else sessionStorage.removeItem(PAY_STORE);
  } catch {
    // no storage in this browser: the attempt lives in the page's memory only
  }
}

/** The stored unsettled attempt, or null (a malformed one is dropped). */
function storedPay() {
  let v = null;
  try {
    v = JSON.parse(sessionStorage.getItem(PAY_STORE) ?? "null");
  } catch {
    v = undefined;
  }
  if (v === null) return null;
  if (v && typeof v.key === "string" && PAY_KEY.test(v.key) && Number.isSafeInteger(v.amount) && v.amount >= 1 &&
      typeof v.ref === "string" && v.ref.length <= 64 && typeof v.reader === "string") {
    return { key: v.key, amount: v.amount, ref: v.ref, reader: v.reader || undefined };
  }
  storePay(null);
  return null;
}

function newPayKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return "loket-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function payBusy(on) {
  paying = on;
  for (const id of ["pay-retry", "pay-new"]) $(id).disabled = on;
  // the purchase's fields and its submit stay locked while an attempt is shown
  for (const id of ["pay-amount", "pay-ref", "pay-submit"]) $(id).disabled = on || payAttempt !== null;
}

/** Renders a payment answer (a result, or an error) for the clerk. */
function showPay(res, err) {
  payShown = { res, err };
  $("pay-done").hidden = true;
  $("pay-balance-line").hidden = true;
  $("pay-message").textContent = "";
  const settled = res && (res.status === "done" || res.status === "not-done");
  if (settled && payAttempt) storePay(null);
  $("pay-retry").hidden = !payAttempt || settled;
  $("pay-new").hidden = !payAttempt;
  if (err) {
    $("pay-state").textContent = describe(err);
    $("pay-state").dataset.kind = "error";
    return;
  }
  if (!res) {
    $("pay-state").textContent = paying ? t("pay.paying") : "";
    $("pay-state").dataset.kind = "info";
    return;
  }
  const words = { done: "pay.done", "not-done": "pay.not-done", pending: "pay.pending" };
  $("pay-state").dataset.kind = res.status === "done" ? "ok" : res.status === "pending" ? "warn" : "error";
  $("pay-state").textContent = res.status === "done" ? "" : t(words[res.status]);
  if (res.status !== "done" && res.message) $("pay-message").textContent = res.message;
  if (res.status === "done") {
    $("pay-done").hidden = false;
    $("pay-code").textContent = res.code || "";
    if (res.balance !== undefined) {
      $("pay-balance-line").hidden = false;
      $("pay-balance").textContent = money(res.balance);
      // the shown card paid: its balance now
      if (purseShown && payAttempt && (payAttempt.reader ?? purseShown.reader) === purseShown.reader) {
        purseShown.balance = res.balance;
        showPurse();
      }
    }
  }
}

async function sendPay() {
  const a = payAttempt;
  if (!a || paying || !operator) return;
  payBusy(true);
  showPay(null, null);
  try {
    const res = await agent.pay({ amount: a.amount, operator, idempotencyKey: a.key, merchantRef: a.ref, reader: a.reader, waitSeconds: WAIT_CARD });
    payBusy(false);
    showPay(res, null);
  } catch (err) {
    payBusy(false);
    if (isUnauthorized(err)) loggedOutNow();
    else showPay(null, err);
  }
}

$("pay-form").addEventListener("submit", (e) => {
  e.preventDefault();
  // an attempt is shown: its Retry or "Pembayaran baru", never a new key here
  if (paying || payAttempt) return;
  const v = $("pay-amount").value.trim();
  const ok = /^[0-9]{1,10}$/.test(v) && Number(v) >= 1;
  $("pay-invalid").hidden = ok;
  if (!ok) return;
  // a new attempt: a new key
  payAttempt = { key: newPayKey(), amount: Number(v), ref: $("pay-ref").value.trim(), reader: reader() };
  // kept before it is sent: a reload while the card is debited finds it
  storePay(payAttempt);
  sendPay();
});

/** The shown payment's answer again (in the page's language now). */
async function refreshPay() {
  const a = payAttempt;
  if (!a || !payShown?.res) return showPay(payShown?.res ?? null, payShown?.err ?? null);
  try {
    const res = await agent.payStatus(a.key, { reader: a.reader });
    // as in restorePay: a late answer about an attempt the clerk has left
    // must not be shown, nor forget the new attempt's stored key
    if (payAttempt === a && !paying) showPay(res, null);
  } catch (err) {
    if (payAttempt === a && !paying) showPay(payShown.res, null);
  }
}

/**
 * After a reload (or in a new tab of this session): the unsettled attempt
 * back, the form locked with only Retry (the same key) and "Pembayaran baru",
 * and its outcome asked of the agent.
 */
async function restorePay() {
  const a = storedPay();
  if (!a) return;
  payAttempt = a;
  $("pay-amount").value = String(a.amount);
  $("pay-ref").value = a.ref;
  payBusy(false);
  showPay(null, null);
  try {
    const res = await agent.payStatus(a.key, { reader: a.reader });
    // the clerk may have pressed Retry or "Pembayaran baru" meanwhile
    if (payAttempt === a && !paying) showPay(res, null);
  } catch (err) {
    if (isUnauthorized(err)) loggedOutNow();
    else if (payAttempt === a && !paying) showPay(null, err);
  }
}

/** Forgets the attempt: an empty, open form. */
function clearPay() {
  payAttempt = null;
  payShown = null;
  storePay(null);
  payBusy(false);
  $("pay-amount").value = "";
  $("pay-ref").value = "";
  showPay(null, null);
}

$("pay-retry").addEventListener("click", () => sendPay());

$("pay-new").addEventListener("click", () => {
  if (paying) return;
  clearPay();
  $("pay-amount").focus();
});

// --- the card data renewal (docs/renewal.md) -------------------------------

/** The reader whose card's renewal the panel shows ("" none). */
let renewalReader = "";
let renewalApplying = false;
/** The last renewal view, to word it again on a language switch. */
let renewalView = null;

/** After a KPE's authentication: the clerk may ask for a data update. */
function offerRenewal(r) {
  renewalReader = r;
  renewalView = null;
  $("renewal").hidden = false;
  $("renewal-check").hidden = false;
  $("renewal-message").textContent = "";
  $("renewal-compare").hidden = true;
  $("renewal-done").hidden = true;
  $("renewal-was-interrupted").hidden = true;
}

function hideRenewal() {
  renewalReader = "";
  renewalView = null;
  $("renewal").hidden = true;
  for (const id of ["renewal-card-fields", "renewal-new-fields"]) $(id).replaceChildren();
}

async function refreshRenewal() {
  if (!renewalReader) return;
  try {
    showRenewal(await agent.renewal(renewalReader));
  } catch (err) {
    if (err instanceof KpeError && err.code === "not-available") hideRenewal();
    else $("renewal-message").textContent = describe(err);
  }
}

/** Renders a renewal view: the comparison, the state's words, the code. */
function showRenewal(v) {
  renewalView = v;
  const words = { checking: "renewal.checking", writing: "renewal.writing", failed: "renewal.failed", interrupted: "renewal.interrupted" };
  let text = renewalApplying ? t("renewal.writing") : words[v.state] ? t(words[v.state]) : "";
  if (v.message) text = (text ? text + " " : "") + v.message;
  $("renewal-message").textContent = text;
  $("renewal-check").hidden = v.state === "available" || v.state === "writing" || v.state === "done" || renewalApplying;
  $("renewal-was-interrupted").hidden = !v.interrupted;
  $("renewal-compare").hidden = v.state !== "available";
  $("renewal-apply").disabled = renewalApplying;
  $("renewal-decline").disabled = renewalApplying;
  renewalFields($("renewal-card-fields"), v.card || []);
  renewalFields($("renewal-new-fields"), v.new || []);
  $("renewal-done").hidden = v.state !== "done";
  $("renewal-code").textContent = v.code || "";
}

function renewalFields(list, fs) {
  const rows = [];
  for (const f of fs) {
    const dt = document.createElement("dt");
    dt.textContent = f.label;
    const dd = document.createElement("dd");
    dd.textContent = f.value || "—";
    if (f.changed) {
      dt.className = dd.className = "changed";
      dd.title = t("renewal.changed");
    }
    rows.push(dt, dd);
  }
  list.replaceChildren(...rows);
}

$("renewal-check").addEventListener("click", async () => {
  if (!renewalReader) return;
  $("renewal-message").textContent = t("renewal.checking");
  try {
    showRenewal(await agent.renewalCheck(renewalReader));
  } catch (err) {
    if (isUnauthorized(err)) return loggedOutNow();
    $("renewal-message").textContent = describe(err);
  }
});

$("renewal-apply").addEventListener("click", async () => {
  if (!renewalReader || renewalApplying) return;
  renewalApplying = true;
  if (renewalView) showRenewal(renewalView);
  try {
    const v = await agent.renewalApply(renewalReader);
    renewalApplying = false;
    showRenewal(v);
    loadCodes();
  } catch (err) {
    renewalApplying = false;
    if (isUnauthorized(err)) return loggedOutNow();
    $("renewal-message").textContent = describe(err);
  }
});

$("renewal-decline").addEventListener("click", async () => {
  if (!renewalReader) return;
  try {
    await agent.renewalDecline(renewalReader);
    await refreshRenewal();
  } catch (err) {
    $("renewal-message").textContent = describe(err);
  }
});

// --- the ASKES form -------------------------------------------------------

function clearForm() {
  $("form").hidden = true;
  $("form-unavailable").hidden = true;
  for (const dd of document.querySelectorAll("#form dd")) dd.textContent = "";
  $("form-qr").removeAttribute("src");
  $("form-qr-box").hidden = true;
  if (qrURL) URL.revokeObjectURL(qrURL);
  qrURL = "";
}

/** A time of the API as this PC's local time (the terminal's), YYYY-MM-DD HH:MM:SS. */
function localTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The form filled from the card, with the code (and its QR code) to print. */
async function showForm(p, res) {
  if (!p) {
    $("form-unavailable").hidden = false;
    return;
  }
  for (const row of document.querySelectorAll("#form-fields [data-field]")) {
    const v = p[row.dataset.field] ?? "";
    row.querySelector("dd").textContent = v;
    row.hidden = v === "";
  }
  const verified = $("form-verified");
  verified.dataset.t = p.data_verified ? FORM_VERIFIED.yes : FORM_VERIFIED.no;
  verified.textContent = t(verified.dataset.t);
  verified.dataset.kind = p.data_verified ? "ok" : "error";
  $("form-code").textContent = res.code;
  $("form-time").textContent = localTime(res.time);
  $("form-operator").textContent = operator;
  $("form-terminal").textContent = terminalID;
  $("form").hidden = false;
  if (body.dataset.qr === "true") {
    try {
      const png = await agent.kioskQR(res.code);
      qrURL = URL.createObjectURL(png);
      $("form-qr").src = qrURL;
      $("form-qr-box").hidden = false;
    } catch (err) {
      if (isUnauthorized(err)) return loggedOutNow();
    }
  }
}

$("print").addEventListener("click", () => window.print());

// --- today's codes --------------------------------------------------------

function showCodes() {
  if (!codes) return;
  const rows = codes.codes.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.state = c.state;
    const cells = [c.code, t(SERVICES[c.service] ?? c.service), String(c.time).slice(11, 19), t(CODE_STATES[c.state] ?? c.state)];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 0) td.className = "code";
      tr.append(td);
    }
    return tr;
  });
  $("codes-body").replaceChildren(...rows);
  $("codes-none").hidden = rows.length > 0;
  $("codes-truncated").hidden = !codes.truncated;
}

/** The read of today's codes in flight, and whether another is wanted after it. */
let codesLoading = null;
let codesAgain = false;

/** Reads today's codes; calls while a read is in flight make one more read after it. */
function loadCodes() {
  if (codesLoading) {
    codesAgain = true;
    return codesLoading;
  }
  codesLoading = (async () => {
    do {
      codesAgain = false;
      try {
        codes = await agent.codesToday();
        showCodes();
      } catch (err) {
        if (isUnauthorized(err)) loggedOutNow();
        codesAgain = false;
      }
    } while (codesAgain);
    codesLoading = null;
  })();
  return codesLoading;
}

$("codes-refresh").addEventListener("click", loadCodes);

// --- events -----------------------------------------------------------------

function onEvent(ev) {
  if (ev.type === "reader" || ev.type === "service") {
    loadReaders().catch((err) => isUnauthorized(err) && loggedOutNow());
    return;
  }
  if (ev.type === "sync") {
    loadCodes();
    return;
  }
  if (ev.type === "renewal") {
    if (renewalReader && ev.reader === renewalReader && !renewalApplying) refreshRenewal();
    return;
  }
  if (ev.type !== "session") return;
  if (renewalReader && ev.reader === renewalReader && (ev.state === "removed" || ev.state === "idle") && !renewalApplying) hideRenewal();
  if (purseShown && ev.reader === purseShown.reader && (ev.state === "removed" || ev.state === "idle")) hidePurse();
  const run = running;
  if (ev.state === "recorded") loadCodes();
  if (!run || (run.reader && ev.reader !== run.reader)) return;
  run.reader ??= ev.reader;
  step(ev);
  if (ev.state === "prompt" && ev.prompt?.kind === "last-try") showPrompt({ reader: ev.reader, id: ev.prompt.id }, ev.message ?? "");
  else if (prompt) hidePrompt();
  // the form is read while the card is surely in: it may leave right after the code
  if (ev.state === "authenticated" && run.service === "askes") loadPrefill(run);
}

function onStatus(s) {
  $("link").dataset.state = s.state;
  $("link").dataset.t = LINK[s.state] ?? "link.closed";
  $("link").textContent = t($("link").dataset.t);
  if (s.state === "open" || s.state === "restarted") {
    loadReaders().catch((err) => isUnauthorized(err) && loggedOutNow());
    loadCodes();
    loadHealth();
  }
}

function follow() {
  stream?.abort();
  const ctl = new AbortController();
  stream = ctl;
  agent.events({ signal: ctl.signal, onEvent, onStatus }).catch((err) => {
    if (isUnauthorized(err)) return loggedOutNow();
    $("link").dataset.state = "closed";
    $("link").textContent = `${t("link.closed")}: ${describe(err)}`;
  });
}

async function loadHealth() {
  try {
    const h = await agent.health();
    if (h.terminal) {
      terminalID = h.terminal;
      $("terminal").textContent = `${t("terminal")} ${h.terminal}`;
    }
  } catch {
    // the light says the agent is away
  }
}

// --- the language ---------------------------------------------------------

function setLang(l) {
  if (l === lang) return;
  lang = l;
  agent.lang = l;
  translate();
  loadHealth();
  showCodes();
  showPurse();
  if (renewalView && !renewalApplying) refreshRenewal();
  if (payShown && !paying) refreshPay();
  // the agent words the events for each connection: follow them again
  if (!loggedOut && body.dataset.login === "ok") follow();
}

$("lang-id").addEventListener("click", () => setLang("id"));
$("lang-en").addEventListener("click", () => setLang("en"));

translate();
if (body.dataset.login === "ok") {
  showShift();
  restorePay();
  follow();
  setInterval(() => loggedOut || loadCodes(), CODES_EVERY_MS);
  $("operator").focus();
}
