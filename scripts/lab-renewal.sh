#!/usr/bin/env bash
# The card lab's renewal set-up (make run; docs/card-lab.md, "In make run"):
#   scripts/lab-renewal.sh STATE DB
# 1. a SoftHSM2 token "kpe-lab-issuer" in STATE/softhsm (scripts/softhsm-init.sh),
#    its PINs random and kept in STATE/softhsm-pin and STATE/softhsm-so-pin;
# 2. the issuer's document-signer key generated inside the token
#    (kpe-backoffice issuer init, label lab-renewal-signer) and certified by
#    the lab's BKN renewal root of lab.json's renewal_ca (kpe-cardsim
#    issuer-cert): STATE/issuer/ds.pem;
# 3. the sample update testdata/renewal/lab-budi.csv (a promotion of Budi,
#    kpe-budi.json) staged in the back office's store DB, unless an update
#    for Budi is staged already.
# It prints the flags of kpe-backoffice serve that sign renewals with that
# key, one a line. A second run reuses the token, the key and the
# certificate. The back office must not be running (DB is its store).
# BIN (default bin) holds kpe-backoffice and kpe-cardsim; SOFTHSM2_MODULE
# overrides the SoftHSM2 module's path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 STATE DB" >&2; exit 2; }
STATE=$1 DB=$2
BIN=${BIN:-bin}
LAB=testdata/cards/lab
BUDI=197208172000031002
MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
TOKEN=kpe-lab-issuer KEY=lab-renewal-signer
[ -r "$MODULE" ] || { echo "$0: no SoftHSM2 module at $MODULE: install the Debian package softhsm2 (make deps)" >&2; exit 1; }
umask 077
mkdir -p "$STATE/issuer"
for f in softhsm-pin softhsm-so-pin; do
  [ -s "$STATE/$f" ] || od -An -N8 -tu8 /dev/urandom | tr -d ' \n' >"$STATE/$f"
done
SOFTHSM_PIN=$(cat "$STATE/softhsm-pin") SOFTHSM_SO_PIN=$(cat "$STATE/softhsm-so-pin") \
  scripts/softhsm-init.sh --dir "$STATE/softhsm" --label "$TOKEN" >/dev/null 2>&1 ||
  { echo "$0: scripts/softhsm-init.sh --dir $STATE/softhsm failed" >&2; exit 1; }
export SOFTHSM2_CONF="$STATE/softhsm/softhsm2.conf"
hsm=(--pkcs11-module "$MODULE" --pkcs11-token "$TOKEN" --pkcs11-key-label "$KEY" --pkcs11-pin-file "$STATE/softhsm-pin")
if [ ! -s "$STATE/issuer/ds.pem" ]; then
  # the key is made once: its request is kept until it is certified
  if [ ! -s "$STATE/issuer/ds.csr" ]; then
    "$BIN/kpe-backoffice" issuer init "${hsm[@]}" --common-name "Lab BKN Renewal Signer" \
      --organization "kpe-agent card lab (not a real issuer)" --out "$STATE/issuer/ds.csr" >/dev/null ||
      { echo "$0: no issuer key in the token; to start over remove $STATE/softhsm and $STATE/issuer" >&2; exit 1; }
  fi
  ca_cert=$(sed -n 's/.*"cert": *"\([^"]*\)".*/\1/p' <(sed -n '/"renewal_ca"/,/}/p' $LAB/lab.json))
  ca_key=$(sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' <(sed -n '/"renewal_ca"/,/}/p' $LAB/lab.json))
  [ -n "$ca_cert" ] && [ -n "$ca_key" ] || { echo "$0: $LAB/lab.json names no renewal_ca" >&2; exit 1; }
  "$BIN/kpe-cardsim" issuer-cert --ca-cert "$LAB/$ca_cert" --ca-key "$LAB/$ca_key" --csr "$STATE/issuer/ds.csr" --out "$STATE/issuer/ds.pem" >/dev/null
fi
# the key in the token and the certificate belong together and chain to
# the lab's BKN trust list
"$BIN/kpe-backoffice" issuer show "${hsm[@]}" --issuer-cert "$STATE/issuer/ds.pem" --issuer-roots $LAB/trust/bkn-ca.pem >/dev/null ||
  { echo "$0: the issuer key and $STATE/issuer/ds.pem do not match; to start over remove $STATE/softhsm and $STATE/issuer" >&2; exit 1; }
if ! "$BIN/kpe-backoffice" renewal list --db "$DB" --status staged --nip $BUDI | grep -q " $BUDI "; then
  "$BIN/kpe-backoffice" renewal import --db "$DB" testdata/renewal/lab-budi.csv >/dev/null
fi
printf '%s\n' --issuer-signer pkcs11 "${hsm[@]}" --issuer-cert "$STATE/issuer/ds.pem" --issuer-roots $LAB/trust/bkn-ca.pem
