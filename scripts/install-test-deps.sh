#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: Prometheus'
# promtool and server (Debian package `prometheus`) to validate and scrape the
# exposition and to receive remote writes, VictoriaMetrics (`victoria-metrics`)
# as a second remote-write receiver, carbon-cache (`graphite-carbon`) for the
# Graphite sink, Prometheus' metrics.proto (golang-github-prometheus-client-model-dev)
# to decode its protobuf form, and the
# Python clients the client tests use (StatsD/DogStatsD, OpenTelemetry SDK with
# its OTLP gRPC exporter, grpcio-tools) and Prometheus' Python parser, and
# Mesa's software Vulkan driver (lavapipe) so the GPU kernels run without a GPU,
# openssl and Python's bcrypt for the TLS and basic-auth receiver test,
# systemd-analyze and the Kubernetes Python client for the deploy checks.
# Idempotent: skips what is already there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v promtool >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
fi

if ! command -v victoria-metrics >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends victoria-metrics
fi

if ! [ -f /usr/share/gocode/src/github.com/prometheus/client_model/io/prometheus/client/metrics.proto ]; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-github-prometheus-client-model-dev
fi

if [ "$(dpkg-query -W -f='${Status}\n' mesa-vulkan-drivers libvulkan1 2>/dev/null | grep -c 'install ok installed')" != 2 ]; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mesa-vulkan-drivers libvulkan1
fi

# carbon-cache (with whisper) receives the Graphite sink's pushes.
if ! command -v carbon-cache >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends graphite-carbon
fi

# openssl makes the certificates of the TLS remote-write test.
if ! command -v openssl >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssl
fi

# systemd-analyze checks the unit in deploy/systemd.
if ! command -v systemd-analyze >/dev/null; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd
fi

if ! python3 -c 'import datadog, statsd, prometheus_client, grpc_tools, kubernetes, bcrypt, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc, grpc' 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/../tests/python/requirements.txt"
fi
