#!/usr/bin/env bash
# Runs the Python client suite against the real binary.
#   CADUCEUS_BIN  the binary to test (default target/debug/caduceus; built if absent)
#   extra arguments go to pytest (e.g. -k history -x); --install-only sets up the venv only
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/pyvenv
req=tests/python/requirements.txt
if [[ ! -x $venv/bin/python ]] || ! cmp -s "$req" "$venv/.requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/.requirements.txt"
fi

if [[ ${1:-} == --install-only ]]; then
    exit 0
fi

export CADUCEUS_BIN=${CADUCEUS_BIN:-target/debug/caduceus}
if [[ ! -x $CADUCEUS_BIN && $CADUCEUS_BIN == target/debug/caduceus ]]; then
    cargo build --locked -p caduceus
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python "$@"
