#!/usr/bin/env bash
# End-to-end plan throughput: `responder plan --format json` against Python's
# `json.load` on the same file, side by side in one run (issue 12, "Scale").
#
#   scripts/bench-plan.sh [RESPONDER_BINARY] [COUNT] [FINDING_FILE]
#
# Defaults: the release binary of the shared target folder, 50,000 findings,
# playbooks/tests/findings/corpus-34-backdoor-ec2-ccactivity-b-dns.json (a camelCase
# EventBridge-style finding that plans to command-and-control-ec2, the longest playbook:
# the worst case per finding among the ~2.6 KB ones). The input is a compact JSON array
# of COUNT copies, copy i with finding id `<id>-<i>`, written to a temporary folder that
# is removed at the end. Each side runs under /usr/bin/time -v; the script prints wall
# time, user+sys CPU and peak RSS (maximum resident set size) of each, and the ratio.
#
# NDJSON=1 writes newline-delimited findings instead of an array. RUNS=N (default 3)
# repeats both sides N times, alternating, and prints every run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/guardduty-responder/target}/release/responder}"
count="${2:-50000}"
finding="${3:-$here/playbooks/tests/findings/corpus-34-backdoor-ec2-ccactivity-b-dns.json}"
runs="${RUNS:-3}"

[ -x "$bin" ] || { echo "no responder binary at $bin (cargo build --release -p responder-cli)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
input="$tmp/findings.json"

python3 - "$finding" "$count" "$input" "${NDJSON:-0}" <<'PY'
import json, sys
src, count, out, ndjson = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
doc = json.load(open(src))
f = doc["detail"] if isinstance(doc.get("detail"), dict) else doc
key = "id" if "id" in f else "Id"
orig = f[key]
f[key] = "__ID__"
head, tail = json.dumps(doc, separators=(",", ":")).split('"__ID__"')
with open(out, "w") as w:
    if not ndjson:
        w.write("[")
    for i in range(count):
        if i and not ndjson:
            w.write(",")
        w.write(head + json.dumps(f"{orig}-{i}") + tail)
        if ndjson:
            w.write("\n")
    if not ndjson:
        w.write("]")
PY
size=$(stat -c %s "$input")
echo "input: $count findings from $(basename "$finding"), $size bytes ($((size / count)) B per finding)$([ "${NDJSON:-0}" = 1 ] && echo ', NDJSON')"
echo "binary: $bin"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # label, command...
    local label="$1"; shift
    /usr/bin/time -v -o "$tmp/time" "$@" >/dev/null 2>"$tmp/stderr" || {
        local rc=$?
        [ "$label" = responder ] && [ "$rc" -ne 0 ] && { echo "responder exited $rc:" >&2; head -5 "$tmp/stderr" >&2; }
    }
    local wall user sys rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/time")
    user=$(awk -F': ' '/User time/ {print $2}' "$tmp/time")
    sys=$(awk -F': ' '/System time/ {print $2}' "$tmp/time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
    # m:ss.cc to seconds
    local secs
    secs=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    printf '%-10s wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB\n' "$label" "$secs" "$(echo "$user + $sys" | bc)" "$(echo "scale=1; $rss / 1024" | bc)"
    echo "$secs" > "$tmp/last"
}

for run in $(seq 1 "$runs"); do
    echo "run $run:"
    measure python python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$input"
    py=$(cat "$tmp/last")
    measure responder "$bin" plan --playbooks "$here/playbooks" --format json "$input"
    rs=$(cat "$tmp/last")
    printf '           responder / python = %.2f\n' "$(echo "scale=4; $rs / $py" | bc)"
done
