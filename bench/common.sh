# Shared by the bench scripts (sourced, not run).

# serve_and_wait BIN DATA_DIR LOG: starts `caduceus serve` on a free loopback port over
# DATA_DIR, sets server_pid and addr once the "listening" log line names the address
# (up to 60 s: a large store may migrate first), and exits the script if it never does.
serve_and_wait() {
    local bin=$1 data=$2 log=$3
    "$bin" --log-format json serve --listen 127.0.0.1:0 --data-dir "$data" 2>"$log" &
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
