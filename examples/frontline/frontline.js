// The example frontline page's script (README.md). It uses only the kpe-agent
// JavaScript client, imported from the agent the clerk names, so the client
// always matches the agent.

const $ = (id) => document.getElementById(id);

/** @type {any} the client module (/v1/client.js) */
let kpe = null;
/** @type {any} the client: it holds the token, in memory only */
let agent = null;
/** @type {AbortController | null} the event stream */
let stream = null;
/** @type {AbortController | null} the authentication in progress */
let running = null;
/**
 * The question on screen: a prompt of the running workflow ({reader, id}),
 * or, without prompts, the request to send again with confirmLastTry ({again}).
 */
let prompt = null;
let loads = 0;

function say(text, kind = "info") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
}

/** The words for the clerk, with the symbolic code for the developer. */
function describe(err) {
  if (!(kpe && err instanceof kpe.KpeError)) return String(err?.message ?? err);
  let s = `${err.message} (${err.code}`;
  if (err.triesLeft !== undefined) s += `, ${err.triesLeft} tries left`;
  return s + ")";
}

function reader() {
  return $("reader").value || undefined;
}

function step(ev) {
  const li = document.createElement("li");
  li.dataset.state = ev.state;
  li.textContent = ev.state + (ev.message ? `: ${ev.message}` : ev.error ? `: ${ev.error.message}` : "");
  $("progress").append(li);
}

function showPrompt(question, text) {
  prompt = question;
  $("prompt-text").textContent = text || "One fingerprint try left.";
  $("prompt").hidden = false;
  $("prompt-continue").focus();
}

function hidePrompt() {
  prompt = null;
  $("prompt").hidden = true;
}

function onEvent(ev) {
  if (ev.type === "reader") {
    loadReaders().catch((err) => say(describe(err), "error"));
    return;
  }
  if (ev.type !== "session" || ev.reader !== reader()) return;
  step(ev);
  if (ev.state === "prompt" && ev.prompt?.kind === "last-try") showPrompt({ reader: ev.reader, id: ev.prompt.id }, ev.message);
  else if (prompt?.id) hidePrompt();
  if (ev.state === "recorded" && ev.code) $("code").textContent = ev.code;
}

const linkWords = {
  connecting: "connecting…",
  open: "connected",
  retrying: "connection lost, retrying",
  restarted: "the agent restarted",
  closed: "stopped",
};

function onStatus(s) {
  $("link").dataset.state = s.state;
  $("link").textContent = linkWords[s.state] + (s.error ? ` (${s.error.code})` : "");
  // events may have been missed while disconnected: read the readers again
  if (s.state === "open" || s.state === "restarted") loadReaders().catch(() => {});
}

async function loadReaders() {
  const keep = reader();
  const list = (await agent.readers()).filter((r) => r.role === "card");
  $("reader").replaceChildren(...list.map((r) => new Option(`${r.name}${r.card_present ? ` (${r.card_kind ?? "card"})` : ""}`, r.name)));
  if (keep && list.some((r) => r.name === keep)) $("reader").value = keep;
  $("start").disabled = running !== null || list.length === 0;
}

function follow() {
  stream?.abort();
  stream = new AbortController();
  agent.events({ onEvent, onStatus, signal: stream.signal }).catch((err) => {
    say(describe(err), "error");
  });
}

$("connect").addEventListener("submit", async (e) => {
  e.preventDefault();
  stream?.abort();
  hidePrompt();
  const base = $("agent").value.trim().replace(/\/+$/, "");
  try {
    // a failed load stays in the browser's module map: ask again with a new URL
    kpe = await import(`${base}/v1/client.js${loads++ ? `?load=${loads}` : ""}`);
  } catch {
    say(`The client could not be loaded from ${base}: is the agent running there, and is ${location.origin} in its api.allowed_origins?`, "error");
    return;
  }
  try {
    agent = kpe.createClient({ baseUrl: base, token: $("token").value, lang: $("lang").value });
    const h = await agent.health();
    await loadReaders();
    say(`Agent ${h.version ?? ""} on terminal ${h.terminal ?? "?"}: ${h.status}.`);
  } catch (err) {
    say(describe(err), "error");
    return;
  }
  follow();
});

$("lang").addEventListener("change", () => {
  if (!agent) return;
  agent.lang = $("lang").value;
  follow(); // the stream's words are chosen when it connects
});

$("reader").addEventListener("change", hidePrompt);

$("auth").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!agent || running) return;
  run({
    service: $("service").value,
    operator: $("operator").value,
    reader: reader(),
    waitSeconds: 60,
    // the last fingerprint try is asked inside the workflow (a "prompt"
    // event, answered with answerPrompt); without it the agent answers
    // finger-last-try and the request is sent again with confirmLastTry
    prompts: $("prompts").checked,
  });
});

async function run(req) {
  running = new AbortController();
  $("start").disabled = true;
  $("cancel").disabled = false;
  hidePrompt();
  if (!req.confirmLastTry) $("progress").replaceChildren();
  $("code").textContent = "";
  say("Insert the card, then ask the holder to place a finger.");
  try {
    const res = await agent.authenticate({ ...req, signal: running.signal });
    $("code").textContent = res.code;
    say(res.message, "done");
  } catch (err) {
    if (err?.name === "AbortError") say("Stopped.", "error");
    else if (err instanceof kpe.KpeError && err.code === "finger-last-try") {
      say(describe(err), "error");
      showPrompt({ again: { ...req, confirmLastTry: true } }, err.message);
    } else if (err instanceof kpe.KpeError && err.code === "reader-busy") {
      say(`${describe(err)} Another window or application is using this reader.`, "error");
    } else say(describe(err), "error");
  } finally {
    running = null;
    if (!prompt?.again) hidePrompt();
    $("cancel").disabled = true;
    $("start").disabled = $("reader").options.length === 0;
  }
}

$("cancel").addEventListener("click", async () => {
  try {
    // the running authentication then fails with "cancelled"; without a
    // reader chosen, closing its request ends it (a cancel names its
    // reader: agent.cancelAll() would end every window's workflow)
    const r = reader();
    if (!r || !(await agent.cancel(r))) running?.abort();
  } catch (err) {
    say(describe(err), "error");
  }
});

async function answer(a) {
  if (!prompt) return;
  const p = prompt;
  hidePrompt();
  if (p.again) {
    if (a === "continue") run(p.again);
    else say("Stopped before the last try.", "error");
    return;
  }
  try {
    if (!(await agent.answerPrompt(p.reader, p.id, a))) say("The question had already expired.", "error");
  } catch (err) {
    say(describe(err), "error");
  }
}

$("prompt-continue").addEventListener("click", () => answer("continue"));
$("prompt-cancel").addEventListener("click", () => answer("cancel"));

// ?agent= may name the agent; the token is never taken from the URL
const named = new URLSearchParams(location.search).get("agent");
if (named) $("agent").value = named;
