#!/usr/bin/env bash
# The main job end to end on a local AWS emulator: starts moto on 127.0.0.1 (installing
# it into a cached venv the first time), launches a sample instance with two ENIs, and
# feeds a real-shaped CryptoCurrency:EC2/BitcoinTool.B!DNS EventBridge event to the
# real Lambda function binary, driven through a local Lambda Runtime API with moto as
# its AWS endpoint. As in production the function verifies the finding with GuardDuty
# first (the demo serves it from a small local findings endpoint, passed as
# AWS_ENDPOINT_URL_GUARDDUTY: moto has no GuardDuty findings) and records each step in
# its ledger (LEDGER_TABLE, a DynamoDB table the demo creates in moto); then it shows
# the function's logs, its report, the state after and the ledger's records.
# Then a second finding, about an instance in member account 111111111111: the function
# verifies it with the administrator's detector and answers it in the member account
# through the assumed member role (GuardDutyResponderMember), the report naming it.
# The demo is the dev-only binary `responder-demo` (crates/responder-demo), not part of
# the `responder` CLI. Extra arguments go to it (e.g. --dry-run). Never talks to real AWS.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${GDR_DEMO_PORT:-5055}"
if ! bash scripts/moto-server.sh status "$port" >/dev/null 2>&1; then
  bash scripts/moto-server.sh start "$port" >&2
  trap 'bash scripts/moto-server.sh stop "$port" >/dev/null 2>&1 || true' EXIT
fi
# Both binaries in one cargo invocation, so that they share one build of the SDK.
cargo build -q --locked -p responder-demo -p guardduty-responder-function
bin="$(cargo metadata -q --locked --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"
"$bin/responder-demo" --endpoint-url "http://127.0.0.1:$port" --lambda "$bin/guardduty-responder" "$@"
