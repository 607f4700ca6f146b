#!/usr/bin/env bash
# `make run`: the virtual card lab on pcscd's vpcd readers with the sample
# KPE in slot 0 and the lab SAM in slot 1, one verified read of the card,
# then the live reader monitor in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROL="${KPE_CARDSIM_CONTROL:-127.0.0.1:35990}"
LAB=testdata/cards/lab
# The lab SAM keeps its activation state and signature counter here.
export KPE_CARDSIM_STATE_DIR="${KPE_CARDSIM_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/kpe-cardsim}"

bin/kpe-cardsim -control "$CONTROL" -card-dir . -insert 0=$LAB/cards/kpe-budi.json -insert 1=$LAB/cards/sam.json &
lab=$!
trap 'kill $lab 2>/dev/null; wait $lab 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 50); do
  curl -fsS "http://$CONTROL/v1/slots" >/dev/null 2>&1 && break
  kill -0 $lab 2>/dev/null || { echo "kpe-cardsim exited; see its log above" >&2; exit 1; }
  sleep 0.1
done

sleep 1
bin/kpectl read -lab $LAB || true

cat <<MSG

  Card lab running: sample KPE in slot 0, lab SAM in slot 1. Control: http://$CONTROL/v1/slots
  In another terminal, try:
    bin/kpectl read -lab $LAB -json
    curl -s -X POST -d '{"card":"$LAB/cards/kpe-clone.json"}' http://$CONTROL/v1/slots/0/swap
    curl -s -X POST -d '{"card":"$LAB/cards/ktpel-siti.json"}' http://$CONTROL/v1/slots/0/swap
    bin/kpectl read -lab $LAB
    bin/kpectl readers
    opensc-tool -l
  Every sample card and its expected verdict: $LAB/lab.json (docs/card-lab.md).

MSG
bin/kpectl monitor
