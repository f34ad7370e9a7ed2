#!/usr/bin/env bash
# Lints the deployment templates offline: cfn-lint (CloudFormation/SAM schema and
# best practices) and checkov (security misconfigurations). Installs both into a
# cached venv on first use. `--install-only` installs them and stops (CI runs that in
# the background while it compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${GDR_CACHE:-$HOME/.cache/guardduty-responder}"
venv="$cache/infra-venv"
if [[ ! -x "$venv/bin/checkov" || ! -x "$venv/bin/cfn-lint" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cfn-lint>=1,<2' 'checkov>=3,<4'
fi
[[ "${1:-}" == --install-only ]] && exit 0
echo "== cfn-lint"
"$venv/bin/cfn-lint" infra/template.yaml infra/member-role.yaml
echo "== checkov"
"$venv/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
  -f infra/template.yaml -f infra/member-role.yaml
