#!/usr/bin/env bash
# `make run`: the virtual card lab on pcscd's vpcd readers, with a card in
# slot 0, and the live reader monitor in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROL="${KPE_CARDSIM_CONTROL:-127.0.0.1:35990}"

bin/kpe-cardsim -control "$CONTROL" -insert 0=testdata/cards/generic-fs.json &
lab=$!
trap 'kill $lab 2>/dev/null; wait $lab 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 50); do
  curl -fsS "http://$CONTROL/v1/slots" >/dev/null 2>&1 && break
  kill -0 $lab 2>/dev/null || { echo "kpe-cardsim exited; see its log above" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

  Card lab running. Control channel: http://$CONTROL/v1/slots
  In another terminal, try:
    bin/kpectl readers
    bin/kpectl apdu '00 A4 04 00 08 F0 4B 50 45 2D 46 53 01' '00 A4 02 04 02 50 01' '00 B0 00 00 0A'
    curl -s -X POST http://$CONTROL/v1/slots/0/remove
    curl -s -X POST -d '{"card":"testdata/cards/generic-fs-t0.json"}' http://$CONTROL/v1/slots/1/insert
    opensc-tool -l

MSG
bin/kpectl monitor
