#!/usr/bin/env bash
# The end-to-end cost of a remote_write sink: benches/e2e.sh at one point with
# the sink off and on, alternated ROUNDS times (default 2), pushing into
# Debian's VictoriaMetrics on loopback (pinned to the load generator's core,
# so tallyd's core is tallyd's alone).
#
#   RATE=2000000 DURATION=20s bash benches/e2e-remote-write.sh [SERIES]   (default 100000)
#
# Every other variable is e2e.sh's. Each run prints e2e.sh's JSON line after
# "sink off:" or "sink on:"; with the sink on, sink_samples_sent says what the
# receiver took and sink_samples_dropped must be 0.
set -euo pipefail
cd "$(dirname "$0")/.."

SERIES=${1:-100000}
ROUNDS=${ROUNDS:-2}
command -v victoria-metrics >/dev/null || {
    echo "needs victoria-metrics (apt-get install victoria-metrics)" >&2
    exit 1
}

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c "${LOADGEN_CPU:-1}" victoria-metrics -httpListenAddr="127.0.0.1:$port" \
    -storageDataPath="$work/data" >"$work/vm.log" 2>&1 &
vm_pid=$!
trap 'kill "$vm_pid" 2>/dev/null || true; wait "$vm_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
    kill -0 "$vm_pid" || { cat "$work/vm.log" >&2; exit 1; }
    sleep 0.1
done

sink="remote_write: [ { url: \"http://127.0.0.1:$port/api/v1/write\", name: bench, queue_config: { capacity: 2000000 } } ]"
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    echo -n "sink off: "
    bash benches/e2e.sh "$SERIES"
    echo -n "sink on:  "
    EXTRA_CONFIG="${EXTRA_CONFIG:-}"$'\n'"$sink" bash benches/e2e.sh "$SERIES"
done
