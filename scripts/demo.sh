#!/usr/bin/env bash
# The main job end to end on a local AWS emulator: starts moto on 127.0.0.1 (installing
# it into a cached venv the first time), launches a sample instance with two ENIs,
# feeds a real-shaped CryptoCurrency:EC2/BitcoinTool.B!DNS finding through the engine
# and the executor, and shows what happened. Extra arguments go to `responder demo`
# (e.g. --dry-run). Never talks to real AWS.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${GDR_DEMO_PORT:-5055}"
if ! bash scripts/moto-server.sh status "$port" >/dev/null 2>&1; then
  bash scripts/moto-server.sh start "$port" >&2
  trap 'bash scripts/moto-server.sh stop "$port" >/dev/null 2>&1 || true' EXIT
fi
cargo run -q -p responder-cli --locked -- demo --endpoint-url "http://127.0.0.1:$port" "$@"
