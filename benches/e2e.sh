#!/usr/bin/env bash
# End-to-end UDP benchmark: tallyd on one core, tallyd-loadgen on another.
#
#   bash benches/e2e.sh [SERIES...]        (default: 1000 100000)
#
# Environment: DURATION (default 10s), RATE (lines/s, 0 = flat out; default 0),
# MIX (counter,gauge,timer,distribution weights; default 4,3,3,0), SINGLE_LINE=1
# for one line per datagram, TALLYD_CPU / LOADGEN_CPU (default 0 / 1),
# UDP_THREADS and SHARDS (default 1 / 1: both share tallyd's core), WINDOW
# (the window interval, default 10s; the run keeps 2 windows either way), and
# EXTRA_CONFIG: YAML appended to tallyd's config (for example
# 'aggregation: { native_histograms: { enabled: true } }'; benches/e2e-sinks.sh
# adds a sink this way).
#
# For each series count it prints one JSON object: lines sent, lines tallyd
# aggregated, accepted lines/s, loss (sent minus aggregated, over sent, with the
# kernel's drop count for tallyd's sockets), tallyd's CPU seconds and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RATE=${RATE:-0}
MIX=${MIX:-4,3,3,0}
TALLYD_CPU=${TALLYD_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
UDP_THREADS=${UDP_THREADS:-1}
SHARDS=${SHARDS:-1}
WINDOW=${WINDOW:-10s}
SERIES_COUNTS=("$@")
[ ${#SERIES_COUNTS[@]} -gt 0 ] || SERIES_COUNTS=(1000 100000)
single_line_flag=()
[ "${SINGLE_LINE:-0}" = 1 ] && single_line_flag=(--single-line)

cargo build --release --locked --bins >&2
work=$(mktemp -d)
trap 'kill "${tallyd_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

metric() { # metric NAME_AND_LABELS < exposition
    awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}
sum_metric() { # sum_metric PREFIX < exposition: sums every sample whose name starts with PREFIX
    awk -v prefix="$1" 'index($1, prefix) == 1 { s += $2 } END { printf "%.0f\n", s }'
}
cpu_seconds() { # utime + stime of a pid, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}

for series in "${SERIES_COUNTS[@]}"; do
    cat >"$work/tallyd.yaml" <<EOF
listen: { udp: ["127.0.0.1:0"], udp_threads: $UDP_THREADS, http: "127.0.0.1:0" }
window: { interval: $WINDOW, retain: 2 }
shards: $SHARDS
logging: { format: json }
${EXTRA_CONFIG:-}
EOF
    taskset -c "$TALLYD_CPU" target/release/tallyd --config "$work/tallyd.yaml" 2>"$work/tallyd.log" &
    tallyd_pid=$!
    until grep -q '"message":"ready"' "$work/tallyd.log"; do
        kill -0 "$tallyd_pid" || { cat "$work/tallyd.log" >&2; exit 1; }
        sleep 0.05
    done
    http=$(grep '"message":"ready"' "$work/tallyd.log" | sed 's/.*"http":"\([^"]*\)".*/\1/')
    udp=$(grep '"message":"ready"' "$work/tallyd.log" | sed 's/.*"udp":"\([^",]*\).*/\1/')
    cpu_before=$(cpu_seconds "$tallyd_pid")

    sent=$(taskset -c "$LOADGEN_CPU" target/release/tallyd-loadgen --target "$udp" \
        --series "$series" --mix "$MIX" --rate "$RATE" --duration "$DURATION" \
        "${single_line_flag[@]}")

    # Wait until tallyd has read everything the kernel queued (the count stops moving).
    previous=-1
    while true; do
        received=$(curl -sf "http://$http/metrics" | metric 'tallyd_lines_received_total{transport="udp"}')
        [ "$received" = "$previous" ] && break
        previous=$received
        sleep 0.5
    done
    cpu_after=$(cpu_seconds "$tallyd_pid")
    exposition=$(curl -sf "http://$http/metrics")
    rejected=$(sum_metric tallyd_lines_rejected_total <<<"$exposition")
    dropped=$(sum_metric tallyd_lines_dropped_total <<<"$exposition")
    kernel_drops=$(metric tallyd_udp_kernel_drops_total <<<"$exposition")
    sink_sent=$(sum_metric tallyd_sink_samples_sent_total <<<"$exposition")
    sink_dropped=$(sum_metric tallyd_sink_samples_dropped_total <<<"$exposition")
    peak_rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$tallyd_pid/status")
    kill -TERM "$tallyd_pid"
    wait "$tallyd_pid" || true
    unset tallyd_pid

    python3 - "$sent" "$received" "$rejected" "$dropped" "$kernel_drops" \
        "$cpu_before" "$cpu_after" "$peak_rss_kib" "$sink_sent" "$sink_dropped" <<'EOF'
import json, sys
sent = json.loads(sys.argv[1])
received, rejected, dropped, kernel_drops = (float(x) for x in sys.argv[2:6])
cpu = float(sys.argv[7]) - float(sys.argv[6])
aggregated = received - rejected - dropped
lost = sent["sent_lines"] - aggregated
print(json.dumps({
    "series": sent["series"],
    "single_line": sent["single_line"],
    "sent_lines": sent["sent_lines"],
    "sent_lines_per_second": round(sent["lines_per_second"]),
    "aggregated_lines": int(aggregated),
    "accepted_lines_per_second": round(aggregated / sent["seconds"]),
    "loss_percent": round(100 * lost / sent["sent_lines"], 4),
    "tallyd_dropped_lines": int(dropped),
    "kernel_dropped_datagrams": int(kernel_drops),
    "tallyd_cpu_seconds": round(cpu, 2),
    "tallyd_peak_rss_mib": round(float(sys.argv[8]) / 1024, 1),
    # Push sinks (0 without one): samples the receivers took, and gave up.
    "sink_samples_sent": int(float(sys.argv[9])),
    "sink_samples_dropped": int(float(sys.argv[10])),
}))
EOF
done
