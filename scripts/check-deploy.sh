#!/usr/bin/env bash
# Checks the deployment artefacts against the tools that run them:
# - deploy/systemd/tallyd.service: `systemd-analyze verify` must print nothing
#   (it exits 0 on misspelt keys, so any output fails), and
#   `systemd-analyze security` must rate its exposure 2.0 or lower;
# - deploy/kubernetes/*.yaml: the Kubernetes API's types, through the official
#   Python client's models (scripts/check_manifests.py);
# - the config in the ConfigMap must pass `tallyd check-config`.
# TALLYD_BIN names the binary to check against (default: the debug build).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${TALLYD_BIN:-$PWD/target/debug/tallyd}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The unit names the installed path; point it at the binary under test.
sed "s#/usr/local/bin/tallyd#$bin#g" deploy/systemd/tallyd.service >"$work/tallyd.service"
out="$(systemd-analyze verify "$work/tallyd.service" 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "systemd-analyze verify deploy/systemd/tallyd.service:" >&2
    echo "$out" >&2
    exit 1
fi
if ! systemd-analyze security --offline=true --threshold=20 "$work/tallyd.service" >"$work/security.txt" 2>&1; then
    cat "$work/security.txt" >&2
    exit 1
fi
tail -n 1 "$work/security.txt"

python3 scripts/check_manifests.py "$work/configmap-tallyd.yaml"
"$bin" check-config "$work/configmap-tallyd.yaml" >/dev/null
echo "deploy artefacts: ok"
