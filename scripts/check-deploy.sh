#!/usr/bin/env bash
# Checks the deployment artefacts against the tools that run them:
# - deploy/systemd/tallyd.service: `systemd-analyze verify` must print nothing
#   about it (it exits 0 on misspelt keys, so any line naming it fails; lines
#   about other units installed on the machine do not), and
#   `systemd-analyze security` must rate its exposure 2.0 or lower;
# - deploy/kubernetes/*.yaml: the Kubernetes API's types, through the official
#   Python client's models (scripts/check_manifests.py);
# - the config in the ConfigMap must pass `tallyd check-config`, with every
#   `${VAR}` it expands set by the DaemonSet's env, and its web config with a
#   certificate openssl makes where the DaemonSet mounts the TLS Secret;
# - the systemd drop-in tallyd.service.d/tls.conf (LoadCredential=) verifies
#   with the unit.
# TALLYD_BIN names the binary to check against (default: the debug build).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${TALLYD_BIN:-$PWD/target/debug/tallyd}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Judges one unit file with `systemd-analyze verify`: its exit status, and any
# line it prints about that file. verify also loads the units the file pulls in
# (multi-user.target and whatever the machine hangs under it), and their
# warnings are not tallyd's to fix, so lines naming other units are shown as a
# note and never fail the check.
verify_unit() {
    local unit="$1" name out rc=0 ours
    name="$(basename "$unit")"
    out="$(systemd-analyze verify "$unit" 2>&1)" || rc=$?
    ours="$(grep -F -e "$unit" -e "$name:" <<<"$out" || true)"
    if [ "$rc" -ne 0 ] || [ -n "$ours" ]; then
        echo "systemd-analyze verify $name (exit $rc):" >&2
        echo "${ours:-$out}" >&2
        return 1
    fi
    if [ -n "$out" ]; then
        echo "note: warnings about other units on this machine, not judged:" >&2
        echo "$out" | sed 's/^/  /' >&2
    fi
}

# The unit names the installed path; point it at the binary under test.
sed "s#/usr/local/bin/tallyd#$bin#g" deploy/systemd/tallyd.service >"$work/tallyd.service"

# The judge, judged: a neighbour unit with a warning, pulled in through
# multi-user.target as an installed package's unit would be, must not fail
# tallyd's check; an unknown key in tallyd's own unit must.
mkdir -p "$work/units/multi-user.target.wants" "$work/broken"
printf '[Unit]\nDescription=neighbour\n[Service]\nExecStart=/bin/true\nNoSuchKey=1\n[Install]\nWantedBy=multi-user.target\n' \
    >"$work/units/neighbour.service"
ln -s ../neighbour.service "$work/units/multi-user.target.wants/neighbour.service"
if ! SYSTEMD_UNIT_PATH="$work/units:" verify_unit "$work/tallyd.service" 2>"$work/neighbour.txt"; then
    echo "check-deploy: a warning from another unit failed tallyd's check:" >&2
    cat "$work/neighbour.txt" >&2
    exit 1
fi
grep -q "NoSuchKey" "$work/neighbour.txt" || {
    echo "check-deploy: the neighbour unit's warning was not seen; the self-check proves nothing" >&2
    exit 1
}
sed 's/^\[Service\]$/[Service]\nNoSuchKey=1/' "$work/tallyd.service" >"$work/broken/tallyd.service"
if verify_unit "$work/broken/tallyd.service" 2>/dev/null; then
    echo "check-deploy: an unknown key in tallyd's unit was not caught" >&2
    exit 1
fi

verify_unit "$work/tallyd.service"
if ! systemd-analyze security --offline=true --threshold=20 "$work/tallyd.service" >"$work/security.txt" 2>&1; then
    cat "$work/security.txt" >&2
    exit 1
fi
tail -n 1 "$work/security.txt"

# The unit with its TLS drop-in, as installed under /etc/systemd/system.
mkdir -p "$work/with-tls/tallyd.service.d"
cp "$work/tallyd.service" "$work/with-tls/"
cp deploy/systemd/tallyd.service.d/tls.conf "$work/with-tls/tallyd.service.d/"
SYSTEMD_UNIT_PATH="$work/with-tls:" verify_unit "$work/with-tls/tallyd.service"
# ... and the drop-in is read: an unknown key in it is caught.
cp -r "$work/with-tls" "$work/broken-tls"
printf '[Service]\nNoSuchKey=1\n' >>"$work/broken-tls/tallyd.service.d/tls.conf"
if SYSTEMD_UNIT_PATH="$work/broken-tls:" verify_unit "$work/broken-tls/tallyd.service" 2>/dev/null; then
    echo "check-deploy: an unknown key in the TLS drop-in was not caught" >&2
    exit 1
fi

python3 scripts/check_manifests.py "$work/configmap-tallyd.yaml" "$work/web.yml"
# The ConfigMap's paths, moved under $work: the web config and the Secret's
# files (a throwaway certificate made here).
mkdir -p "$work/tallyd-tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=tallyd -keyout "$work/tallyd-tls/tls.key" -out "$work/tallyd-tls/tls.crt" 2>/dev/null
sed -i "s#/etc/tallyd-tls/#$work/tallyd-tls/#g" "$work/web.yml"
sed -i "s#/etc/tallyd/web.yml#$work/web.yml#g" "$work/configmap-tallyd.yaml"
# Every ${VAR} the ConfigMap's config expands must be set by the DaemonSet.
vars=()
for var in $(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$work/configmap-tallyd.yaml" | tr -d '${}' | sort -u); do
    grep -q "^ *- name: $var\$" deploy/kubernetes/daemonset.yaml || {
        echo "check-deploy: the ConfigMap's config uses \${$var}, which the DaemonSet's env does not set" >&2
        exit 1
    }
    vars+=("$var=check-deploy")
done
env "${vars[@]}" "$bin" check-config "$work/configmap-tallyd.yaml" >/dev/null
echo "deploy artefacts: ok"
