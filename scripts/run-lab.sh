#!/usr/bin/env bash
# `make run`: the whole terminal on this machine, no hardware.
#   1. the reference back office (embedded store) with a lab TLS PKI, signing
#      card data renewals with a key generated in a SoftHSM2 token, and a
#      sample update staged for Budi (scripts/lab-renewal.sh),
#   2. the virtual card lab on pcscd's vpcd readers: the sample KPE in
#      slot 0, the lab SAM in slot 1, and the lab's fingerprint sensor,
#   3. the agent (configs/lab.yaml) with its local API on 127.0.0.1:7531,
# then one ASKES authentication through the local API: the code is printed
# and checked on the back office, and the back office offers Budi's
# update. Everything stays up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROL="${KPE_CARDSIM_CONTROL:-127.0.0.1:35990}"
AGENT=127.0.0.1:7531
BO_TERMINAL=127.0.0.1:8443
BO_STAFF=127.0.0.1:8080
BO_INSTITUTIONS=127.0.0.1:8444
LAB=testdata/cards/lab
STATE="${KPE_LAB_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/kpe-lab}"
mkdir -p "$STATE" && chmod 700 "$STATE"
# The lab SAM keeps its activation state and signature counter here.
export KPE_CARDSIM_STATE_DIR="$STATE/cardsim"

say() { printf '\n>> %s\n' "$*"; }
# Stopping. Each child runs in a session of its own, so Ctrl-C in the
# terminal, or a signal to make's process group (timeout(1), a CI runner,
# kill -TERM -PGID), reaches only this script (and make), whose cleanup
# then stops the children one by one, the agent first, each gracefully.
# Each is also tethered to this shell (kpe-cardsim tether): should the
# shell die without its cleanup (SIGKILL), the kernel sends every child
# SIGTERM. make run starts this script tethered to make in the same way.
pids=()
start() { bin/kpe-cardsim tether --parent $$ --setsid -- "$@" & pids+=($!); }
# alive PID: PID runs (it is not a zombie waiting to be reaped)
alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
cleanup() {
  # make passes its SIGTERM on and a process group gets one of its own:
  # a second signal must not cut the teardown short
  trap '' INT TERM HUP
  local i p
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p=${pids[i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 150); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for NAME PID CMD...: retry CMD for up to 15 s while PID lives.
wait_for() {
  local name=$1 pid=$2; shift 2
  for _ in $(seq 150); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; see its log above" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name did not come up within 15 s" >&2; exit 1
}

# A lab from an earlier run, or anything else, on one of the lab's ports:
# say which process holds it rather than fail later with "address already
# in use".
bin/kpe-cardsim check-ports >/dev/null "$BO_TERMINAL=the back office for terminals" "$BO_STAFF=the back office's staff page" \
  "$BO_INSTITUTIONS=the back office's institutions' API" \
  "$CONTROL=the card lab's control API" "$AGENT=the agent's local API" || exit 1

# secrets of the lab terminal (files readable by this user only)
umask 077
[ -s "$STATE/api-token" ] || od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/api-token"
# the lab SAM's activation code and its two KTP-el installation secrets,
# from lab.json (secrets/sam-code, secrets/ktp-secrets); the lab SAM
# computes the KTP-el pseudonyms with its own key (ktpel.pseudonym: sam)
bin/kpe-cardsim secrets --lab $LAB --out "$STATE/secrets" >/dev/null
export KPE_SAM_KTP_SECRETS_FILE="$STATE/secrets/ktp-secrets"
TOKEN=$(cat "$STATE/api-token")
bin/kpe-cardsim pki --dir "$STATE/pki" --terminal lab-01 >/dev/null

# the lab's staff account: an admin with a random password kept in the
# state dir (readable by this user only); the back office is not running
# yet, so its store file is free
[ -s "$STATE/staff-password" ] || od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/staff-password"
bin/kpe-backoffice user add lab-admin --role admin --password-stdin --db "$STATE/backoffice.db" <"$STATE/staff-password" >/dev/null 2>&1 ||
  bin/kpe-backoffice user passwd lab-admin --password-stdin --db "$STATE/backoffice.db" <"$STATE/staff-password" >/dev/null
# ASKES as an institution of the institutions' API, its key in the state
# dir (shown once at registration: a lost file means a new key)
if [ ! -s "$STATE/askes-api-key" ]; then
  { bin/kpe-backoffice institution add askes --service askes --db "$STATE/backoffice.db" 2>/dev/null ||
    bin/kpe-backoffice institution rotate-key askes --db "$STATE/backoffice.db"; } | sed -n 's/^API key: //p' >"$STATE/askes-api-key"
  [ -s "$STATE/askes-api-key" ] || { echo "could not register the lab institution askes" >&2; exit 1; }
fi

# card data renewals (docs/renewal.md): the issuer's key in a SoftHSM2
# token of the state dir, certified by the lab's BKN renewal root, and a
# sample update for Budi (kpe-budi.json) staged unless one is; a second run
# reuses the token, the key and the update
issuer=$(scripts/lab-renewal.sh "$STATE" "$STATE/backoffice.db") || exit 1
mapfile -t issuer_flags <<<"$issuer"
export SOFTHSM2_CONF="$STATE/softhsm/softhsm2.conf" # the token's directory (scripts/softhsm-init.sh)
# the e-wallet (docs/ewallet.md): a top-up staged for Budi, the bank as an
# institution, and the lab's purse masters to check the cards' proofs
ewallet=$(scripts/lab-ewallet.sh "$STATE" "$STATE/backoffice.db") || exit 1
mapfile -t ewallet_flags <<<"$ewallet"

say "back office: terminals https://$BO_TERMINAL, staff page http://$BO_STAFF"
start bin/kpe-backoffice serve "${issuer_flags[@]}" "${ewallet_flags[@]}" --listen "$BO_TERMINAL" --staff-listen "$BO_STAFF" --db "$STATE/backoffice.db" \
  --sam-ca $LAB/trust/backoffice-ca.pem --tls-cert "$STATE/pki/server.pem" --tls-key "$STATE/pki/server-key.pem" \
  --client-ca "$STATE/pki/tls-ca.pem" --institution lab=Lab --institution-listen "$BO_INSTITUTIONS"
wait_for "kpe-backoffice" $! curl -fsS -m 5 "http://$BO_STAFF/v1/health"
# signed in as lab-admin for the checks below (a cookie jar in the state dir;
# the password goes from its file into the form, never onto a command line)
JAR="$STATE/staff-cookies"
rm -f "$JAR"
form_token=$(curl -fsS -m 5 -c "$JAR" -b "$JAR" "http://$BO_STAFF/login" | grep -o 'name="csrf_token" value="[^"]*"' | cut -d'"' -f4)
curl -fsS -m 10 -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "csrf_token=$form_token" --data-urlencode "user=lab-admin" \
  --data-urlencode "password@$STATE/staff-password" "http://$BO_STAFF/login"

say "card lab: sample KPE in slot 0, lab SAM in slot 1 (control http://$CONTROL)"
start bin/kpe-cardsim serve --control "$CONTROL" --card-dir . --insert 0=$LAB/cards/kpe-budi.json --insert 1=$LAB/cards/sam.json
# up once vpcd has taken both cards (each slot "active"): the agent then
# starts with the card and the SAM already in their readers
cards_active() { [ "$(curl -fsS -m 5 "http://$CONTROL/v1/slots" | grep -o '"active":true' | wc -l)" -ge 2 ]; }
wait_for "kpe-cardsim" $! cards_active

say "agent: local API http://$AGENT"
export KPE_OUTBOX_PATH="$STATE/outbox.db" KPE_API_TOKEN_FILE="$STATE/api-token" KPE_SAM_ACTIVATION_CODE_FILE="$STATE/secrets/sam-code" \
  KPE_SYNC_CLIENT_CERT="$STATE/pki/terminal.pem" KPE_SYNC_CLIENT_KEY="$STATE/pki/terminal-key.pem" KPE_SYNC_CA="$STATE/pki/tls-ca.pem"
start bin/kpe-agent run --config configs/lab.yaml
agent=$!
api() { curl -fsS -m 10 -H "Authorization: Bearer $TOKEN" "$@"; }
sam_ready() { api "http://$AGENT/v1/health" | grep -q '"state":"active"'; }
if ! (wait_for "kpe-agent" $agent sam_ready); then
  echo "the agent's health:" >&2; api "http://$AGENT/v1/health" >&2 || true; echo >&2
  echo "(is pcscd running? 'make run' starts it; 'bin/kpectl doctor' says more)" >&2
  exit 1
fi

curl -fsS -m 10 -o /dev/null "http://$AGENT/kiosk/" || { echo "the agent does not serve its kiosk page" >&2; exit 1; }

say "ASKES authentication: the holder places a finger on the lab sensor"
curl -fsS -m 10 -X PUT -d '{"mode":"genuine"}' "http://$CONTROL/v1/slots/0/finger" >/dev/null
answer=$(curl -sS -m 45 -H "Authorization: Bearer $TOKEN" -X POST -d '{"service":"askes","operator":"demo-clerk","wait_seconds":30}' "http://$AGENT/v1/auth")
code=$(printf '%s' "$answer" | grep -o '"code":"[^"]*"' | head -1 | cut -d'"' -f4)
if [ -z "$code" ]; then echo "authentication failed: $answer" >&2; exit 1; fi
echo "   authentication code: $code"

synced=""
for _ in $(seq 150); do
  if curl -fsS -m 5 -b "$JAR" "http://$BO_STAFF/v1/verify/$code" 2>/dev/null | grep -q '"valid":true'; then synced=yes; break; fi
  sleep 0.1
done
if [ -z "$synced" ]; then echo "the back office does not know $code yet (see the agent's log)" >&2; exit 1; fi
echo "   the back office verifies it: synced"
inst() { curl -fsS -m 5 --cacert "$STATE/pki/tls-ca.pem" -H "Authorization: Bearer $(cat "$STATE/askes-api-key")" "$@"; }
inst "https://$BO_INSTITUTIONS/institution/v1/verify/$code" | grep -q '"valid":true' ||
  { echo "ASKES's institutions' API does not verify $code" >&2; exit 1; }
echo "   ASKES's system verifies it through the institutions' API"

say "card data renewal: the back office offers Budi's staged update"
offer=$(api -X POST -d '{}' "http://$AGENT/v1/renewal/check") || { echo "the agent's renewal check failed" >&2; exit 1; }
printf '%s' "$offer" | grep -q '"state":"available"' || { echo "no renewal offered for Budi: $offer" >&2; exit 1; }
echo "   an update is offered, signed in the SoftHSM2 token (kiosk: touch Mulai, finger, Perbarui kartu)"

say "e-wallet: a payment of Rp 25,000 at the counter from Budi's purse"
paid=$(api -X POST -d "{\"amount\":25000,\"merchant_ref\":\"LAB-INV-1\",\"idempotency_key\":\"lab-$(date +%s%N)\",\"operator\":\"demo-clerk\"}" "http://$AGENT/v1/pay") ||
  { echo "the agent's payment failed" >&2; exit 1; }
printf '%s' "$paid" | grep -q '"status":"done"' || { echo "the payment did not go through: $paid" >&2; exit 1; }
echo "   receipt code $(printf '%s' "$paid" | grep -o '"code":"[^"]*"' | cut -d'"' -f4), balance Rp $(printf '%s' "$paid" | grep -o '"balance":[0-9]*' | cut -d: -f2)"

# On a desktop, open the kiosk in the user's browser (not as root, whose
# browser would need its sandbox turned off); KPE_LAB_NO_BROWSER=1 does not.
if [ -z "${KPE_LAB_NO_BROWSER:-}" ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(id -u)" != 0 ] && command -v xdg-open >/dev/null; then
  setsid xdg-open "http://$AGENT/kiosk/" >/dev/null 2>&1 </dev/null &
  echo "   the kiosk is opening in your browser"
fi

cat <<MSG

  Running: back office, card lab and agent. Ctrl-C stops them all.
  Token: $STATE/api-token   State: $STATE
  Staff sign-in: http://$BO_STAFF/login as lab-admin, password in $STATE/staff-password
  Institutions' API: https://$BO_INSTITUTIONS/institution/v1/ as askes, key in $STATE/askes-api-key;
         as the bank (settlement only), key in $STATE/bank-api-key
  Kiosk: http://$AGENT/kiosk/   (kiosk.enabled in configs/lab.yaml; open it in Chromium:
         the lab KPE is in the reader, touch Mulai; docs/kiosk.md)
  Renewal: an update waits for Budi; at the kiosk, after the finger, "Data di kartu" |
         "Data terbaru BKN", then Perbarui kartu (docs/card-lab.md, "In make run")
         bin/kpe-backoffice renewal list --db $STATE/backoffice.db   (after Ctrl-C: the store is the back office's)
  E-wallet: a top-up of Rp 100,000 waits for Budi ("update saldo" at the kiosk); payments at the
         counter screen (kpectl loket --open) or POST /v1/pay; the settlement of a finished day:
         bin/kpe-backoffice settlement --date YYYY-MM-DD --db $STATE/backoffice.db   (after Ctrl-C)

  Try:
    curl -s -H "Authorization: Bearer \$(cat $STATE/api-token)" http://$AGENT/v1/readers
    curl -s -H "Authorization: Bearer \$(cat $STATE/api-token)" http://$AGENT/v1/card/askes-form
    curl -sN -H "Authorization: Bearer \$(cat $STATE/api-token)" http://$AGENT/v1/events
    bin/kpectl status --agent http://$AGENT --token-file $STATE/api-token
    bin/kpectl auth --service taspen --operator demo-clerk --agent http://$AGENT --token-file $STATE/api-token
    bin/kpectl loket --open --agent http://$AGENT --token-file $STATE/api-token   (the counter screen)
    bin/kpectl readers
    open http://$BO_STAFF/?code=$code   (the back office's verify page; sign in as lab-admin)
    curl -s --cacert $STATE/pki/tls-ca.pem -H "Authorization: Bearer \$(cat $STATE/askes-api-key)" https://$BO_INSTITUTIONS/institution/v1/records
    curl -s -X POST -d '{"card":"$LAB/cards/kpe-clone.json"}' http://$CONTROL/v1/slots/0/swap
  Local API: docs/local-api.md. Every sample card: $LAB/lab.json (docs/card-lab.md).

MSG
wait $agent
