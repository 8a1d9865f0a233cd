# Shared by the bench scripts (sourced, not run).

# The store under test: the embedded one in a data folder (default), or PostgreSQL when
# PG_ADMIN_URL is set (e.g. postgres://postgres:pw@127.0.0.1:5432/postgres): each run then
# gets a fresh database on that server, made by fresh_store and named in $pg_url.
pg_url=
STORE_LABEL=sqlite
[[ -n ${PG_ADMIN_URL:-} ]] && STORE_LABEL=postgres

# fresh_store DATA_DIR: empties the store (removes the folder, or creates a new database).
fresh_store() {
    if [[ -n ${PG_ADMIN_URL:-} ]]; then
        local db
        db="caduceus_bench_$(date +%s%N)"
        psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
        pg_url="${PG_ADMIN_URL%/*}/$db"
    else
        rm -rf "$1"
    fi
}

# store_flags DATA_DIR: the flags that select the store under test.
store_flags() {
    if [[ -n ${PG_ADMIN_URL:-} ]]; then
        [[ -n $pg_url ]] || fresh_store "$1"
        echo "--database $pg_url"
    else
        echo "--data-dir $1"
    fi
}

# serve_and_wait BIN DATA_DIR LOG: starts `caduceus serve` on a free loopback port over
# the store (see store_flags), sets server_pid and addr once the "listening" log line names
# the address (up to 60 s: a large store may migrate first), and exits the script if it
# never does.
# SERVE_FLAGS: the server's security flags (default --insecure-dev-mode).
serve_and_wait() {
    local bin=$1 data=$2 log=$3
    # shellcheck disable=SC2046,SC2086 # the flags are words
    "$bin" --log-format json serve --listen 127.0.0.1:0 ${SERVE_FLAGS:---insecure-dev-mode} $(store_flags "$data") 2>"$log" &
    server_pid=$!
    addr=
    for _ in $(seq 1 600); do
        addr=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    if r.get("message") == "listening": print(r["addr"]); break
' "$log")
        [[ -n $addr ]] && return 0
        sleep 0.1
    done
    echo "server did not start:" >&2
    cat "$log" >&2
    exit 1
}
