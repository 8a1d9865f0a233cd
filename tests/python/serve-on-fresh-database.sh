#!/usr/bin/env bash
# Stands in for the caduceus binary when the Python suite runs on PostgreSQL (run.sh makes it
# CADUCEUS_BIN when CADUCEUS_TEST_STORE=postgres), so that every server the suite starts gets
# a store of its own, as it does with a data folder: creates a fresh database on
# CADUCEUS_TEST_DATABASE_URL (which must name a database: .../postgres), runs the real
# binary (CADUCEUS_REAL_BIN) with `--database <that database>` in place of
# `--data-dir <folder>`, passes SIGTERM on, and drops the database once the server exited.
set -euo pipefail
admin=${CADUCEUS_TEST_DATABASE_URL:?the PostgreSQL database URL}
real=${CADUCEUS_REAL_BIN:?the caduceus binary}

# The harness's prefix and layout (caduceus_t_<unix time>_...), so that its sweep of
# databases left behind by killed runs covers these too.
db="caduceus_t_$(date +%s)_py$$_$RANDOM"
base=${admin%%\?*}
url="${base%/*}/$db${admin:${#base}}"
admin_sql() { psql "$admin" -X -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
admin_sql "CREATE DATABASE $db"

args=()
while (($#)); do
    if [[ $1 == --data-dir && $# -ge 2 ]]; then
        args+=(--database "$url")
        shift 2
    else
        args+=("$1")
        shift
    fi
done

"$real" "${args[@]}" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
set +e
wait "$pid"
status=$?
# A trapped signal cuts that wait short: wait again for the server's own exit status.
if ((status > 128)); then
    wait "$pid"
    again=$?
    ((again == 127)) || status=$again
fi
admin_sql "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
exit "$status"
