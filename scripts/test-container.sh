#!/usr/bin/env bash
# Builds the container image from a static binary built here (the Dockerfile's
# `prebuilt` path; no registry is needed) and runs it with buildah: a DogStatsD
# line sent over UDP must come back from /metrics, the image's health check
# command must pass, and the image must run as a non-root user. buildah
# (chroot isolation, vfs storage) is installed if missing. The container uses
# the host's network, so ports 8125 and 9102 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v buildah >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah
fi
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked \
    --no-default-features --features jemalloc --target x86_64-unknown-linux-gnu --bin tallyd

image=localhost/tallyd:ci
buildah bud --quiet --format docker --build-arg BINARY_FROM=prebuilt -t "$image" . >/dev/null
user="$(buildah inspect --format '{{.Docker.Config.User}}' "$image")"
[ "$user" = "65532:65532" ] || { echo "image runs as '$user', not 65532:65532" >&2; exit 1; }
buildah inspect --format '{{.Docker.Config.Healthcheck.Test}}' "$image" | grep -q healthcheck

container="$(buildah from "$image")"
log="$(mktemp)"
cleanup() {
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    buildah rm "$container" >/dev/null || true
    buildah rmi "$image" >/dev/null 2>&1 || true
    buildah rmi --prune >/dev/null 2>&1 || true
    rm -f "$log"
}
buildah run --network host "$container" -- /usr/local/bin/tallyd --config /etc/tallyd/tallyd.yaml 2>"$log" &
daemon=$!
trap cleanup EXIT

wait_for() { # description, command...
    local what="$1"; shift
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what; tallyd's log:" >&2
    cat "$log" >&2
    return 1
}
wait_for "tallyd to be ready" grep -q '"message":"ready"' "$log"
buildah run --network host "$container" -- /usr/local/bin/tallyd healthcheck --addr 127.0.0.1:9102
printf 'container.requests:3|c|#from:ci\n' >/dev/udp/127.0.0.1/8125
metric_arrived() {
    python3 - <<'PY'
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen("http://127.0.0.1:9102/metrics", timeout=2).read().decode()
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        if sample.name == "container_requests_total" and sample.labels == {"from": "ci"} and sample.value == 3:
            sys.exit(0)
sys.exit(1)
PY
}
# The counter shows once its window (10 s by default) closes.
wait_for "the counter on /metrics" metric_arrived
echo "container round trip: ok ($image, user $user)"
