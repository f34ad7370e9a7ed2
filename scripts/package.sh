#!/usr/bin/env bash
# Builds the Lambda deployment artifact, dist/bootstrap.zip (provided.al2023), which
# infra/template.yaml's CodeUri names: `sam deploy` uploads this file as it is (there
# is no `sam build` step). cargo-lambda and zig come from PyPI into a cached venv.
# arm64 when the aarch64 standard library is installed or can be fetched
# (`rustup target add aarch64-unknown-linux-gnu`), else x86_64 (then deploy with
# Architecture=x86_64; the script says so). The playbooks are compiled into the
# binary. How long a cold build takes: the README, "Build times".
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${GDR_CACHE:-$HOME/.cache/guardduty-responder}"
venv="$cache/lambda-venv"
if [[ ! -x "$venv/bin/cargo-lambda" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda>=1.9,<2' ziglang
fi
export PATH="$venv/bin:$PATH"
arch=arm64
if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "note: the aarch64 standard library is not installed and cannot be fetched here; building x86_64" >&2
    arch=x86-64
  fi
fi
cargo lambda build --release "--$arch" --output-format zip -p guardduty-responder-function
built="${CARGO_TARGET_DIR:-target}/lambda/guardduty-responder/bootstrap.zip"
mkdir -p dist
cp "$built" dist/bootstrap.zip
# Lambda reports the deployed code's CodeSha256 in this form (base64 of the SHA-256):
# compare it with `aws lambda get-function --function-name <FunctionName output>`.
sha="$(openssl dgst -sha256 -binary dist/bootstrap.zip | base64)"
echo "artifact: dist/bootstrap.zip, $(stat -c %s dist/bootstrap.zip) bytes, CodeSha256 $sha"
if [[ "$arch" == arm64 ]]; then
  echo "deploy: sam deploy -t infra/template.yaml --guided   (Architecture=arm64, the default)"
else
  echo "deploy: sam deploy -t infra/template.yaml --guided --parameter-overrides Architecture=x86_64"
fi
