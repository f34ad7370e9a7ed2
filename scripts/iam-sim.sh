#!/usr/bin/env bash
# The deployment templates' IAM judged by an independent simulator (docs/security.md).
# Usage: scripts/iam-sim.sh [--install-only] [RECORDING_DIR]
#   RECORDING_DIR: the folder a test run recorded its AWS calls into
#   (GDR_IAM_RECORD=DIR cargo test ...); without it, only scripts/iam-sim/cases.yaml.
# Installs the pinned npm packages once (scripts/iam-sim/install.sh, Node 20+).
set -euo pipefail
cd "$(dirname "$0")/.."
modules="$(bash scripts/iam-sim/install.sh | tail -n 1)"
if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi
exec node scripts/iam-sim/simulate.mjs "$modules" "$@"
