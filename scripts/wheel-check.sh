#!/usr/bin/env bash
# The wheel works outside the repository: build it, install it with the locked runtime
# dependencies into a fresh virtualenv in a temporary folder, and run `gateway init` and
# `gateway demo` from an empty folder. Templates, catalogs, word tables, examples, the example
# config, migrations and web assets must all come from the installed package.
# Usage: scripts/wheel-check.sh BUILD_PYTHON RUNTIME_LOCK
set -euo pipefail
build_python=$1
lock=$(realpath "$2")
checkout=$(pwd)
work=$(mktemp -d /tmp/gateway-wheel-check.XXXXXX)
# setuptools writes build/ and the .egg-info into the checkout: they would shadow the editable
# install's metadata (entry points) for anything run from here, so they go too.
trap 'rm -rf "$work" "$checkout/build" "$checkout"/*.egg-info' EXIT

echo "wheel-check: building the wheel"
"$build_python" -m build --wheel --no-isolation --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/*.whl)

echo "wheel-check: installing $(basename "$wheel") in a fresh virtualenv outside the checkout"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --require-hashes -r "$lock" 2>"$work/pip.log" || { cat "$work/pip.log"; exit 1; }
"$work/venv/bin/pip" install -q --no-deps "$wheel" 2>>"$work/pip.log" || { cat "$work/pip.log"; exit 1; }

mkdir -p "$work/empty"
cd "$work/empty"
"$work/venv/bin/python" - <<'PY'
import gateway, gateway.resources, gateway_plugins
for module in (gateway, gateway.resources, gateway_plugins):
    assert "/site-packages/" in module.__file__, f"{module.__name__} imported from {module.__file__}"
PY
"$work/venv/bin/gateway" init >"$work/init.log" 2>&1 || { cat "$work/init.log"; exit 1; }
test -s config.yaml || { echo "wheel-check: gateway init wrote no config.yaml"; exit 1; }
grep -q "quiet_hours:" config.yaml || { echo "wheel-check: config.yaml is not the example config"; exit 1; }
for example in families.csv reading-workshop.yaml transport-survey.yaml; do
  test -s "examples/$example" || { echo "wheel-check: gateway init wrote no examples/$example"; exit 1; }
done
"$work/venv/bin/gateway" families import examples/families.csv >"$work/import.log" 2>&1 \
  || { cat "$work/import.log"; exit 1; }
"$work/venv/bin/gateway" broadcast send workshop_invitation --event examples/reading-workshop.yaml --dry-run \
  >"$work/dry-run.log" 2>&1 || { cat "$work/dry-run.log"; exit 1; }
"$work/venv/bin/gateway" demo --dir "$work/demo" >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
for expected in "imported" "dispatched through the sandbox channels" "RSVPs: yes" "inbox:"; do
  grep -q "$expected" "$work/demo.log" || { cat "$work/demo.log"; echo "wheel-check: demo output lacks '$expected'"; exit 1; }
done
ls "$work/demo/data/channels/"*/outbox/*.json >/dev/null
echo "wheel-check: passed (gateway init and gateway demo from the installed wheel)"
