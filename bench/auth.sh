#!/usr/bin/env bash
# The cost of authentication and access control: the same reads and searches of the
# release binary without authentication (--insecure-dev-mode), with a token of a caller
# cleared for everything (token validation only), and with a token of a clinician cleared
# for normal confidentiality (labels checked on every resource and pushed into searches).
# Tokens come from the built-in authorization server (ES256). Prints a table; no
# pass/fail.
#
#   bench/auth.sh                  # demo data (Synthea samples from ../shared when there)
#   DURATION=30s bench/auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
BIN=target/release/caduceus
BASE_URL=http://bench.caduceus.test/fhir

for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install -y wrk curl python3)" >&2; exit 1; }
done
echo "== cargo build --release --locked -p caduceus"
cargo build --release --locked -p caduceus

work=$(mktemp -d /tmp/caduceus-bench-auth.XXXXXX)
server_pid=
stop() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    server_pid=
}
trap 'stop; rm -rf "$work"' EXIT

fresh_store "$work/data"
flags=$(store_flags "$work/data")
# shellcheck disable=SC2086
"$BIN" demo-data $flags >/dev/null 2>&1
secret() { # client-id extra-flags... -> the generated secret
    local id=$1
    shift
    # shellcheck disable=SC2086
    "$BIN" clients add "$id" --secret-generate --scope 'system/*.rs' --role clinician "$@" $flags 2>/dev/null | tail -n 1
}
normal_secret=$(secret bench-normal)
cleared_secret=$(secret bench-cleared --clearance V --department '*')

wrk_figures() { # file -> "reqs/s p50 p99 non2xx"
    python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(s):
    v, u = re.fullmatch(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {m.group(1) if m else 0}")
PY
}
token() { # client secret -> access token
    curl -sf -u "$1:$2" -d grant_type=client_credentials -d 'scope=system/*.rs' "http://$addr/auth/token" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

rows=()
run() { # label auth-header path
    local label=$1 header=$2 path=$3 out
    out="$work/$(tr -c 'a-z0-9' _ <<<"$label").txt"
    local -a h=(-H 'Accept: application/fhir+json')
    [[ -n $header ]] && h+=(-H "$header")
    code=$(curl -s -o /dev/null -w '%{http_code}' "${h[@]}" "http://$addr/fhir/$path")
    [[ $code == 200 ]] || { echo "$label: $path answered $code" >&2; exit 1; }
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${h[@]}" "http://$addr/fhir/$path" >"$out"
    read -r rps p50 p99 bad < <(wrk_figures "$out")
    rows+=("$(printf '%-44s %9s %8s %8s %6s' "$label" "$rps" "$p50" "$p99" "$bad")")
}

for mode in insecure tokens; do
    if [[ $mode == insecure ]]; then
        SERVE_FLAGS="--insecure-dev-mode" serve_and_wait "$BIN" "$work/data" "$work/serve-$mode.log"
        patient=$(curl -sf "http://$addr/fhir/Patient?_count=1&_elements=id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
        run "read Patient/id, no authentication" "" "Patient/$patient"
        run "search Observation?patient, no authentication" "" "Observation?patient=$patient&_count=20"
    else
        SERVE_FLAGS="--plain-http --auth-server --base-url $BASE_URL" serve_and_wait "$BIN" "$work/data" "$work/serve-$mode.log"
        cleared=$(token bench-cleared "$cleared_secret")
        normal=$(token bench-normal "$normal_secret")
        run "read Patient/id, token cleared for all" "Authorization: Bearer $cleared" "Patient/$patient"
        run "read Patient/id, token with label checks" "Authorization: Bearer $normal" "Patient/$patient"
        run "search Observation?patient, token cleared" "Authorization: Bearer $cleared" "Observation?patient=$patient&_count=20"
        run "search Observation?patient, label checks" "Authorization: Bearer $normal" "Observation?patient=$patient&_count=20"
    fi
    stop
done

echo
echo "Caduceus auth bench (store: $STORE_LABEL, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "each row: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency [-H 'Authorization: Bearer …'] URL"
printf '%-44s %9s %8s %8s %6s\n' "case" "req/s" "p50 ms" "p99 ms" "non2xx"
printf '%s\n' "${rows[@]}"
