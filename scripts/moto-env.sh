#!/usr/bin/env bash
# Create (once) a Python venv with moto's server and print its bin dir on the last line.
# Cache root: $GDR_CACHE (default ~/.cache/guardduty-responder). Needs python3 with venv.
set -euo pipefail

cache="${GDR_CACHE:-$HOME/.cache/guardduty-responder}"
venv="$cache/venv"
spec='moto[server]>=5.2,<5.3'

have_moto() {
  [[ -x "$venv/bin/moto_server" ]] &&
    "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
v = tuple(int(x) for x in m.version("moto").split(".")[:2])
m.version("flask")  # the [server] extra
sys.exit(0 if v == (5, 2) else 1)
PY
}

if ! have_moto; then
  mkdir -p "$cache"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >&2
  have_moto || { echo "moto-env: $spec not usable in $venv" >&2; exit 1; }
fi

echo "$venv/bin"
