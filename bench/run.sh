#!/usr/bin/env bash
# The benchmark: import throughput and read throughput/latency of the release binary.
# Prints a table of measured figures next to the targets, with the command behind each.
# No pass/fail: this is for people, not for CI.
#
#   bench/run.sh                 # everything, with ../shared/fhir/synthea
#   DURATION=30s bench/run.sh    # longer wrk runs
#   IMPORT_RUNS=1 bench/run.sh   # one import run instead of three (median is reported)
#   PG_ADMIN_URL=postgres://postgres:pw@127.0.0.1:5432/postgres bench/run.sh   # on PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh

SYNTHEA=${SYNTHEA:-../shared/fhir/synthea}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
IMPORT_RUNS=${IMPORT_RUNS:-3}
BIN=target/release/caduceus

for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench needs $tool (apt-get install -y wrk curl python3)" >&2; exit 1; }
done
[[ -d $SYNTHEA ]] || { echo "bench needs the Synthea bundles at $SYNTHEA" >&2; exit 1; }

echo "== cargo build --release --locked -p caduceus"
cargo build --release --locked -p caduceus

work=$(mktemp -d /tmp/caduceus-bench.XXXXXX)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- (a) import ----------------------------------------------------------------------------
import_cmd="$BIN import $SYNTHEA STORE --quiet"
rates=()
for run in $(seq 1 "$IMPORT_RUNS"); do
    fresh_store "$work/data"
    flags=$(store_flags "$work/data")
    echo "== import run $run: ${import_cmd/STORE/$flags}"
    # shellcheck disable=SC2086 # the flags are words
    line=$("$BIN" import "$SYNTHEA" $flags --quiet 2>"$work/import.log" | grep '^imported ')
    echo "$line"
    # "imported N resources from F files in S s (R resources/s); K failures"
    rate=$(sed -E 's/.*\(([0-9.]+) resources\/s\).*/\1/' <<<"$line")
    failures=$(sed -E 's/.*; ([0-9]+) failures.*/\1/' <<<"$line")
    [[ $failures == 0 ]] || { echo "import had $failures failures" >&2; exit 1; }
    rates+=("$rate")
    import_line=$line
done
import_rate=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
import_all=$(IFS=,; echo "${rates[*]}")

# --- (b) serve the imported data -------------------------------------------------------------
serve_and_wait "$BIN" "$work/data" "$work/serve.log"
base="http://$addr/fhir"
echo "== serving on $base"

# Real ids: the system history, 1000 per page, following next links.
python3 - "$base" "$work/paths.txt" <<'PY'
import json, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
url, paths = f"{base}/_history?_count=1000", []
while url and len(paths) < 5000:
    with urllib.request.urlopen(url) as r:
        page = json.load(r)
    for e in page.get("entry", []):
        res = e.get("resource")
        if res:
            paths.append(f"{res['resourceType']}/{res['id']}")
    url = next((l["url"] for l in page.get("link", []) if l["relation"] == "next"), None)
open(out, "w").write("\n".join(paths) + "\n")
print(f"== {len(paths)} resource paths for the rotating run")
PY
one=$(grep -m1 '^Patient/' "$work/paths.txt")
curl -sf -o /dev/null "$base/$one"

# --- (c) reads -------------------------------------------------------------------------------
# Other work on the machine (a compile) skews latency: the load average goes in the table.
load=$(cut -d' ' -f1-3 /proc/loadavg)
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
bad = m.group(1) if m else "0"
m = re.search(r"not-200: (\d+)", t)
if m: bad = str(max(int(bad), int(m.group(1))))
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {bad}")
PY
}

# Server CPU time (user + system) per request: a figure that other load on the machine
# does not inflate the way it inflates latency.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
cpu_us_per_request() { # ticks-before ticks-after wrk-output
    local n
    n=$(grep -Eo '^ +[0-9]+ requests in' "$3" | grep -Eo '[0-9]+')
    python3 -c "print(f'{($2 - $1) / $(getconf CLK_TCK) / $n * 1e6:.1f}')"
}

wrk_single="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $base/$one"
echo "== $wrk_single"
t0=$(cpu_ticks)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H 'Accept: application/fhir+json' "$base/$one" | tee "$work/single.txt"
s_cpu=$(cpu_us_per_request "$t0" "$(cpu_ticks)" "$work/single.txt")
read -r s_rps s_p50 s_p99 s_bad < <(wrk_figures "$work/single.txt")

npaths=$(wc -l <"$work/paths.txt")
wrk_rot="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s bench/rotate.lua http://$addr -- paths.txt($npaths ids)"
echo "== $wrk_rot"
t0=$(cpu_ticks)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/rotate.lua "http://$addr" -- "$work/paths.txt" | tee "$work/rotate.txt"
r_cpu=$(cpu_us_per_request "$t0" "$(cpu_ticks)" "$work/rotate.txt")
read -r r_rps r_p50 r_p99 r_bad < <(wrk_figures "$work/rotate.txt")

# --- table -----------------------------------------------------------------------------------
verdict() { python3 -c "import sys; print('meets' if $1 else 'BELOW')"; }
echo
echo "Caduceus bench (store: $STORE_LABEL, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average before the reads: $load)"
printf '%-34s %12s %12s %-6s %s\n' "figure" "measured" "target" "" "command"
printf '%-34s %12s %12s %-6s %s\n' "import (median of $IMPORT_RUNS) resources/s" "$import_rate" ">= 5000" "$(verdict "$import_rate >= 5000")" "$import_cmd  [runs: $import_all]"
printf '%-34s %12s %12s %-6s %s\n' "read, one id: reads/s" "$s_rps" ">= 35000" "$(verdict "$s_rps >= 35000")" "$wrk_single"
printf '%-34s %12s %12s %-6s %s\n' "read, one id: p50 ms" "$s_p50" "" "" "(same run)"
printf '%-34s %12s %12s %-6s %s\n' "read, one id: p99 ms" "$s_p99" "< 2.5" "$(verdict "$s_p99 < 2.5")" "(same run; non-200: $s_bad)"
printf '%-34s %12s %12s %-6s %s\n' "read, one id: server CPU us/read" "$s_cpu" "" "" "(same run; /proc/PID/stat utime+stime / requests)"
printf '%-34s %12s %12s %-6s %s\n' "read, rotating ids: reads/s" "$r_rps" ">= 35000" "$(verdict "$r_rps >= 35000")" "$wrk_rot"
printf '%-34s %12s %12s %-6s %s\n' "read, rotating ids: p50 ms" "$r_p50" "" "" "(same run)"
printf '%-34s %12s %12s %-6s %s\n' "read, rotating ids: p99 ms" "$r_p99" "< 2.5" "$(verdict "$r_p99 < 2.5")" "(same run; non-200: $r_bad)"
printf '%-34s %12s %12s %-6s %s\n' "read, rotating: server CPU us/read" "$r_cpu" "" "" "(same run; /proc/PID/stat utime+stime / requests)"
echo "last import: $import_line"
echo "note: wrk runs on the same machine as the server and takes CPU from it."
if [[ $s_bad != 0 || $r_bad != 0 ]]; then
    echo "some reads did not answer 200; the figures are not valid" >&2
    exit 1
fi
