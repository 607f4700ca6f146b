#!/usr/bin/env bash
# The card lab's e-wallet set-up (make run; docs/card-lab.md, "In make run"):
#   scripts/lab-ewallet.sh STATE DB
# 1. a top-up of Rp 100,000 for Budi (kpe-budi.json) staged in the back
#    office's store DB, unless one is staged or authorised already;
# 2. the bank as an institution of the institutions' API (scope: payments
#    and settlement only), its key in STATE/bank-api-key.
# It prints the flags of kpe-backoffice serve that check the cards' purse
# proofs with the lab's purse masters (trust/purse-keys.json), one a line.
# The back office must not be running (DB is its store). BIN (default bin)
# holds kpe-backoffice.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 STATE DB" >&2; exit 2; }
STATE=$1 DB=$2
BIN=${BIN:-bin}
LAB=testdata/cards/lab
BUDI=197208172000031002
umask 077
mkdir -p "$STATE"
if ! "$BIN/kpe-backoffice" topup list --db "$DB" --nip $BUDI | grep -Eq ' (staged|authorised) '; then
  "$BIN/kpe-backoffice" topup stage --db "$DB" --nip $BUDI --amount 100000 --ref "LAB-TOPUP-$(date +%Y%m%d%H%M%S)" >/dev/null
fi
if [ ! -s "$STATE/bank-api-key" ]; then
  { "$BIN/kpe-backoffice" institution add bank --service bank --db "$DB" 2>/dev/null ||
    "$BIN/kpe-backoffice" institution rotate-key bank --db "$DB"; } | sed -n 's/^API key: //p' >"$STATE/bank-api-key"
  [ -s "$STATE/bank-api-key" ] || { echo "$0: could not register the lab institution bank" >&2; exit 1; }
fi
keys=$(sed -n 's/.*"purse_keys": *"\([^"]*\)".*/\1/p' $LAB/lab.json)
[ -n "$keys" ] || { echo "$0: $LAB/lab.json names no purse_keys" >&2; exit 1; }
printf '%s\n' --purse-keys "$LAB/$keys" --purse-keys-lab
