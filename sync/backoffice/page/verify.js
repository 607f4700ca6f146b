// The verification page's script (page/verify.html): a file the staff
// listener serves, since its policy allows no inline script.
"use strict";
// The page's words in both languages, from the catalogue (internal/i18n,
// staff.verify.*), and the language the server chose by the language rule.
const T = JSON.parse(document.getElementById("texts").textContent);
let lang = document.documentElement.lang === "en" ? "en" : "id";
let last = null;
function t(k) { return T[lang][k] || k; }
function paint() {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  if (last) show(last);
}
function row(dl, k, v) {
  if (v === undefined || v === null || v === "") return;
  const dt = document.createElement("dt"); dt.textContent = t(k);
  const dd = document.createElement("dd"); dd.textContent = v; dd.dataset.field = k;
  dl.append(dt, dd);
}
function show(v) {
  last = v;
  const box = document.getElementById("verdict");
  box.replaceChildren();
  box.className = v.valid ? "valid" : "invalid";
  box.dataset.valid = String(v.valid);
  const h = document.createElement("h2"); h.textContent = (v.valid ? t("valid") : t("invalid")) + " — " + v.code;
  box.append(h);
  if (!v.valid) {
    const p = document.createElement("p"); p.textContent = t(v.reason || "error"); p.dataset.reason = v.reason || "error";
    box.append(p);
    return;
  }
  const dl = document.createElement("dl");
  row(dl, "service", v.service);
  row(dl, "time", new Date(v.time).toLocaleString(lang === "id" ? "id-ID" : "en-GB", { timeZone: "Asia/Jakarta" }) + " WIB");
  row(dl, "clock", v.clock);
  row(dl, "terminal", v.terminal_id);
  row(dl, "site", v.site_id);
  row(dl, "card", v.card_type);
  for (const k of ["card_auth", "issuer_signature", "identifiers", "fingerprint"]) row(dl, k, v.checks[k]);
  row(dl, "signer", v.signer);
  row(dl, "sam", v.sam_serial + " / " + v.counter);
  row(dl, "received", new Date(v.received_at).toISOString());
  if (v.flags && v.flags.length) row(dl, "flags", v.flags.join(", "));
  box.append(dl);
}
document.getElementById("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const code = document.getElementById("code").value.trim();
  try {
    const r = await fetch("/v1/verify/" + encodeURIComponent(code), { headers: { Accept: "application/json" } });
    if (r.status === 429) {
      show({ valid: false, code: code, reason: "rate-limited" });
      return;
    }
    if (!r.ok) throw new Error(String(r.status));
    show(await r.json());
  } catch (e) {
    show({ valid: false, code: code, reason: "error" });
  }
});
document.getElementById("lang-id").addEventListener("click", (e) => { e.preventDefault(); lang = "id"; paint(); });
document.getElementById("lang-en").addEventListener("click", (e) => { e.preventDefault(); lang = "en"; paint(); });
paint();
// a link or QR code can carry the code: /?code=XXXX-XXXX-XXXX-XXXX
const linked = new URLSearchParams(location.search).get("code");
if (linked) {
  document.getElementById("code").value = linked;
  document.getElementById("form").requestSubmit();
}
