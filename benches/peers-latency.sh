#!/usr/bin/env bash
# tallyd's latency histograms at one rate, loaded as ../shared/peers/ loads it:
# tallyd pinned to CPU 0 with one of the harness's configs, its load generator
# on CPU 1 for 10 s across one window close; then the p50/p99/max bucket of
# tallyd_socket_wait_seconds, tallyd_ingest_delay_seconds and
# tallyd_window_publish_delay_seconds from /metrics, and the drop counters.
#
#   bash benches/peers-latency.sh tallyd-rcvbuf212k.yaml 1000 2640000
#
# DUMP=1 also prints every bucket of tallyd_ingest_delay_seconds.
# PEERS_DIR: where ../shared/peers/build-peers.sh put bin/loadgen (default
# $TMPDIR/tallyd-peers); TALLYD_BIN: default target/release/tallyd.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=$1 series=$2 rate=$3
peers_configs=${PEERS_CONFIGS:-../shared/peers/configs}
loadgen=${PEERS_DIR:-${TMPDIR:-/tmp}/tallyd-peers}/bin/loadgen
bin=${TALLYD_BIN:-$PWD/target/release/tallyd}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Port 9113, beside the harness's 9112.
sed 's/9112/9113/' "$peers_configs/$cfg" >"$work/tallyd.yaml"
# Start just after a 10 s boundary, as the harness does: one window closes
# about 8 s into the load.
python3 -c "import time; time.sleep(10 - time.time() % 10 + 0.05)"
taskset -c 0 "$bin" --config "$work/tallyd.yaml" 2>"$work/log" &
pid=$!
for _ in $(seq 1 100); do curl -sf localhost:9113/readyz >/dev/null && break; sleep 0.1; done
sleep 2
taskset -c 1 "$loadgen" -p 8125 -s "$series" -d 10 -r "$rate" -q >"$work/loadgen.json"
# Until the window the load ended in has closed.
sleep 11
curl -s localhost:9113/metrics >"$work/metrics.txt"
kill "$pid"
wait "$pid" || true
python3 - "$work/metrics.txt" <<'PY'
import os
import sys
from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
families = {f.name: f for f in text_string_to_metric_families(text)}

def bucket_at(name, labels, quantile):
    """The upper bound of the first bucket holding `quantile` of the observations."""
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for s in families[name].samples
        if s.name.endswith("_bucket") and all(s.labels.get(k) == v for k, v in labels.items())
    )
    total = buckets[-1][1]
    return next(le for le, count in buckets if count >= quantile * total), int(total)

for name, labels in [
    ("tallyd_socket_wait_seconds", {"transport": "udp"}),
    ("tallyd_ingest_delay_seconds", {}),
    ("tallyd_window_publish_delay_seconds", {}),
]:
    (p50, n), (p99, _), (top, _) = (bucket_at(name, labels, q) for q in (0.5, 0.99, 1.0))
    print(f"{name}: n={n} p50<={p50} p99<={p99} max<={top}")
if os.environ.get("DUMP"):
    for s in families["tallyd_ingest_delay_seconds"].samples:
        if s.name.endswith("_bucket"):
            print(f"  tallyd_ingest_delay_seconds le={s.labels['le']}: {int(s.value)}")
for line in text.splitlines():
    if line.startswith(("tallyd_udp_kernel_drops_total", 'tallyd_lines_dropped_total{reason="queue_full"}',
                        'tallyd_lines_received_total{transport="udp"}')):
        print(line)
PY
