#!/usr/bin/env bash
# Initialise a SoftHSM2 token in a directory of its own, for the lab and the
# tests (docs/renewal.md, "HSM setup"):
#   scripts/softhsm-init.sh --dir DIR --label LABEL --pin PIN --so-pin SOPIN
# writes DIR/softhsm2.conf (token directory DIR/tokens) and initialises a
# token LABEL in the first free slot. Use the token with
#   SOFTHSM2_CONF=DIR/softhsm2.conf
# (the script prints that line); each directory is a separate set of
# tokens, so tests and lab runs never share state. A token of that label
# already in DIR is kept (exit 0): the lab keeps its issuer key across runs.
# The PINs may come from the environment instead (SOFTHSM_PIN,
# SOFTHSM_SO_PIN), which keeps them out of this script's own command line
# only: softhsm2-util reads a PIN from its terminal or its command line
# (it does not read one from a pipe), so the script passes them as
# --pin/--so-pin and they are in the process list while softhsm2-util
# runs. SoftHSM2 is a software token, with lab PINs: for the lab and
# tests only; production uses a real HSM and its vendor's tools.
set -euo pipefail
usage() { echo "usage: $0 --dir DIR --label LABEL [--pin PIN] [--so-pin SOPIN]" >&2; exit 2; }
dir="" label="" pin="${SOFTHSM_PIN:-}" sopin="${SOFTHSM_SO_PIN:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:-}; shift 2 || usage ;;
    --label) label=${2:-}; shift 2 || usage ;;
    --pin) pin=${2:-}; shift 2 || usage ;;
    --so-pin) sopin=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[ -n "$dir" ] && [ -n "$label" ] && [ -n "$pin" ] && [ -n "$sopin" ] || usage
command -v softhsm2-util >/dev/null || { echo "$0: softhsm2-util not found: install the Debian package softhsm2 (make deps)" >&2; exit 1; }
mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"
dir=$(cd "$dir" && pwd)
conf="$dir/softhsm2.conf"
cat >"$conf" <<CONF
# written by scripts/softhsm-init.sh
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$conf"
if softhsm2-util --show-slots 2>/dev/null | sed -n 's/^ *Label: *//p' | sed 's/ *$//' | grep -Fxq -- "$label"; then
  echo "token \"$label\" exists already in $dir" >&2
else
  # the PINs are visible in the process list for this call (lab only; see above)
  softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$sopin" >&2
fi
echo "SOFTHSM2_CONF=$conf"
