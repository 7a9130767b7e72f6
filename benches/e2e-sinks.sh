#!/usr/bin/env bash
# The end-to-end cost of a push sink: benches/e2e.sh at one point with the
# sink off and on, alternated ROUNDS times (default 2), pushing into a real
# receiver on loopback pinned to the load generator's core (so tallyd's core
# is tallyd's alone):
#
#   SINK=remote_write  Debian's VictoriaMetrics (the default)
#   SINK=graphite      Debian's carbon-cache, whisper files in a temp folder
#   SINK=otlp          a second tallyd (release build) taking OTLP over gRPC
#
#   RATE=2000000 DURATION=20s SINK=graphite bash benches/e2e-sinks.sh [SERIES]   (default 100000)
#
# Every other variable is e2e.sh's. Each run prints e2e.sh's JSON line after
# "sink off:" or "sink on:"; with the sink on, sink_samples_sent says what the
# receiver took and sink_samples_dropped must be 0.
set -euo pipefail
cd "$(dirname "$0")/.."

SERIES=${1:-100000}
ROUNDS=${ROUNDS:-2}
SINK=${SINK:-remote_write}
LOADGEN_CPU=${LOADGEN_CPU:-1}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'kill "${receiver_pid:-}" 2>/dev/null || true; wait "${receiver_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

listening() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), timeout=1)" 2>/dev/null; }
wait_for_receiver() {
    until listening; do
        kill -0 "$receiver_pid" || { cat "$work/receiver.log" >&2; exit 1; }
        sleep 0.1
    done
}

case "$SINK" in
remote_write)
    command -v victoria-metrics >/dev/null || { echo "needs victoria-metrics" >&2; exit 1; }
    taskset -c "$LOADGEN_CPU" victoria-metrics -httpListenAddr="127.0.0.1:$port" \
        -storageDataPath="$work/data" >"$work/receiver.log" 2>&1 &
    receiver_pid=$!
    sink="remote_write: [ { url: \"http://127.0.0.1:$port/api/v1/write\", name: bench, queue_config: { capacity: 2000000 } } ]"
    ;;
graphite)
    command -v carbon-cache >/dev/null || { echo "needs carbon-cache (graphite-carbon)" >&2; exit 1; }
    free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    cat >"$work/carbon.conf" <<CONF
[cache]
STORAGE_DIR = $work
LOCAL_DATA_DIR = $work/whisper
WHISPER_DIR = $work/whisper
LOG_DIR = $work
PID_DIR = $work
USER =
ENABLE_TAGS = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $port
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $(free)
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $(free)
LOG_UPDATES = False
CONF
    printf '[everything]\npattern = .*\nretentions = 10s:10m\n' >"$work/storage-schemas.conf"
    taskset -c "$LOADGEN_CPU" carbon-cache --config="$work/carbon.conf" --nodaemon start >"$work/receiver.log" 2>&1 &
    receiver_pid=$!
    sink="graphite: [ { address: \"127.0.0.1:$port\", name: bench, queue_config: { capacity: 4000000 } } ]"
    ;;
otlp)
    cargo build --release --locked --bins >&2
    cat >"$work/aggregator.yaml" <<CONF
listen: { udp: [], http: "127.0.0.1:0", grpc: "127.0.0.1:$port" }
logging: { format: json }
CONF
    taskset -c "$LOADGEN_CPU" target/release/tallyd --config "$work/aggregator.yaml" >"$work/receiver.log" 2>&1 &
    receiver_pid=$!
    sink="otlp_export: [ { endpoint: \"http://127.0.0.1:$port\", name: bench, queue_config: { capacity: 2000000 } } ]"
    ;;
*)
    echo "SINK is remote_write, graphite or otlp, not $SINK" >&2
    exit 1
    ;;
esac
wait_for_receiver

for round in $(seq "$ROUNDS"); do
    echo "round $round"
    echo -n "sink off: "
    bash benches/e2e.sh "$SERIES"
    echo -n "sink on:  "
    EXTRA_CONFIG="${EXTRA_CONFIG:-}"$'\n'"$sink" bash benches/e2e.sh "$SERIES"
done
