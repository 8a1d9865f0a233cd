#!/usr/bin/env bash
# Runs the Python client suite against the real binary.
#   CADUCEUS_BIN  the binary to test (default target/debug/caduceus; built if absent)
#   CADUCEUS_TEST_STORE=postgres  every server on a fresh database of
#                 CADUCEUS_TEST_DATABASE_URL instead of a data folder (needs psql)
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

if [[ ${CADUCEUS_TEST_STORE:-} == postgres ]]; then
    : "${CADUCEUS_TEST_DATABASE_URL:?CADUCEUS_TEST_STORE=postgres needs CADUCEUS_TEST_DATABASE_URL}"
    CADUCEUS_REAL_BIN=$(realpath "$CADUCEUS_BIN")
    export CADUCEUS_REAL_BIN
    export CADUCEUS_BIN=tests/python/serve-on-fresh-database.sh
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python "$@"
