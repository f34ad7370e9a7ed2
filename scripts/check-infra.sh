#!/usr/bin/env bash
# Checks the deployment templates offline: `sam validate --lint` (the SAM CLI of the
# README's deploy commands, as far as it goes without AWS: it reads the template as
# `sam deploy` would and lints it with its SAM transform applied), cfn-lint on both
# templates (CloudFormation schema and best practices) and checkov (security
# misconfigurations). Installs the three into a cached venv on first use.
# `--install-only` installs them and stops (CI runs that in the background while it
# compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${GDR_CACHE:-$HOME/.cache/guardduty-responder}"
venv="$cache/infra-venv"
if [[ ! -x "$venv/bin/checkov" || ! -x "$venv/bin/cfn-lint" || ! -x "$venv/bin/sam" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'cfn-lint>=1,<2' 'checkov>=3,<4' 'aws-sam-cli>=1.140,<2'
fi
[[ "${1:-}" == --install-only ]] && exit 0

echo "== sam validate --lint (the deploy command, offline)"
# No AWS: a Region and placeholder credentials satisfy the CLI, which then calls
# nothing. SAM's config (its weekly PyPI version check, telemetry) lives in the
# cache, marked as just checked, not in ~/.aws-sam.
sam_home="$cache/sam-config"
mkdir -p "$sam_home"
printf '{"telemetryEnabled": false, "lastVersionCheck": %s}\n' "$(date +%s)" >"$sam_home/metadata.json"
env -u AWS_PROFILE -u AWS_ENDPOINT_URL __SAM_CLI_APP_DIR="$sam_home" SAM_CLI_TELEMETRY=0 \
  AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=placeholder AWS_SECRET_ACCESS_KEY=placeholder \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  "$venv/bin/sam" validate --lint -t infra/template.yaml
echo "== cfn-lint"
"$venv/bin/cfn-lint" infra/template.yaml infra/member-role.yaml
echo "== checkov"
"$venv/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
  -f infra/template.yaml -f infra/member-role.yaml
