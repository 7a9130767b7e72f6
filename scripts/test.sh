#!/usr/bin/env bash
# The whole test suite, as the README's test command runs it on a fresh Debian
# machine with a Rust toolchain. Installs whatever the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool and the Python clients (skipped when already installed).
bash scripts/install-test-deps.sh

# Unit, integration, allocation-budget and bench-correctness tests (criterion runs
# each bench once in test mode and its checks must pass), then doc tests.
cargo test --locked --all-targets
cargo test --locked --doc

# Real third-party clients (Python datadog and statsd) against the daemon built
# above, read back with prometheus_client and validated with promtool.
TALLYD_BIN=target/debug/tallyd python3 tests/python/test_clients.py
