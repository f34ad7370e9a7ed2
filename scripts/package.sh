#!/usr/bin/env bash
# Builds the Lambda deployment artifact (bootstrap.zip, provided.al2023) with
# cargo-lambda and zig, both from PyPI into a cached venv. arm64 when the aarch64
# standard library is installed (`rustup target add aarch64-unknown-linux-gnu`),
# x86_64 otherwise. The playbooks are compiled into the binary. A cold release build
# compiles the AWS SDK with LTO: expect 15 minutes or more on 2 cores.
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
    echo "      (set Architectures: [x86_64] in infra/template.yaml to deploy this artifact)" >&2
    arch=x86-64
  fi
fi
cargo lambda build --release "--$arch" --output-format zip -p guardduty-responder-function
zip="${CARGO_TARGET_DIR:-target}/lambda/guardduty-responder/bootstrap.zip"
ls -l "$zip"
echo "artifact: $zip ($arch)"
