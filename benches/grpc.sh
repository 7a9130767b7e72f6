#!/usr/bin/env bash
# gRPC ingest benchmark: tallyd on one core, tallyd-grpc-load on another, one
# connection over loopback, batches of BATCH_EVENTS values.
#
#   bash benches/grpc.sh [SERIES_PER_BATCH...]     (default: 100 10000)
#
# Environment: DURATION (default 10s), BATCH_EVENTS (default 10000), MODE
# (stream or unary; default stream), TALLYD_CPU / LOAD_CPU (default 0 / 1),
# SHARDS (default 1).
#
# For each series-per-batch count it prints the load generator's JSON (values
# accepted per second) with what tallyd counted: values received over gRPC, the
# grand total of every counter series (what the shards aggregated), values
# dropped for any reason, CPU seconds and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
BATCH_EVENTS=${BATCH_EVENTS:-10000}
MODE=${MODE:-stream}
TALLYD_CPU=${TALLYD_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SHARDS=${SHARDS:-1}
SERIES_COUNTS=("$@")
[ ${#SERIES_COUNTS[@]} -gt 0 ] || SERIES_COUNTS=(100 10000)

cargo build --release --locked --bins >&2
work=$(mktemp -d)
trap 'kill "${tallyd_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

metric() { # metric NAME_AND_LABELS < exposition
    awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}

for series in "${SERIES_COUNTS[@]}"; do
    cat >"$work/tallyd.yaml" <<EOF
listen: { udp: [], http: "127.0.0.1:0", grpc: "127.0.0.1:0", udp_threads: 1 }
window: { interval: 10s, retain: 2 }
shards: $SHARDS
logging: { format: json }
EOF
    taskset -c "$TALLYD_CPU" target/release/tallyd --config "$work/tallyd.yaml" 2>"$work/tallyd.log" &
    tallyd_pid=$!
    until grep -q '"message":"ready"' "$work/tallyd.log"; do
        kill -0 "$tallyd_pid" || { cat "$work/tallyd.log" >&2; exit 1; }
        sleep 0.05
    done
    ready=$(grep '"message":"ready"' "$work/tallyd.log")
    http=$(sed 's/.*"http":"\([^"]*\)".*/\1/' <<<"$ready")
    grpc=$(sed 's/.*"grpc":"\([^"]*\)".*/\1/' <<<"$ready")
    load=$(taskset -c "$LOAD_CPU" target/release/tallyd-grpc-load --target "$grpc" \
        --batch-events "$BATCH_EVENTS" --series "$series" --duration "$DURATION" --mode "$MODE")
    exposition=$(curl -sf "http://$http/metrics")
    received=$(metric 'tallyd_lines_received_total{transport="grpc"}' <<<"$exposition")
    dropped=$(awk 'index($1, "tallyd_lines_dropped_total") == 1 { s += $2 } END { print s + 0 }' <<<"$exposition")
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$tallyd_pid/stat")
    rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$tallyd_pid/status")
    kill "$tallyd_pid"
    wait "$tallyd_pid" || true
    echo "{\"load\": $load, \"tallyd_received\": $received, \"tallyd_dropped\": $dropped, \"tallyd_cpu_seconds\": $cpu, \"tallyd_peak_rss_mib\": $((rss_kib / 1024))}"
done
