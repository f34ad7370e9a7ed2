#!/usr/bin/env bash
# Install the IAM simulator's pinned npm packages (package-lock.json, `npm ci`) once
# into a cache folder named by the lock file's hash, and print that folder (its
# node_modules holds them) on the last line. Needs Node 20+ and npm.
# Cache root: $GDR_CACHE (default ~/.cache/guardduty-responder).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${GDR_CACHE:-$HOME/.cache/guardduty-responder}"
command -v node >/dev/null || { echo "iam-sim: node not found (Node 20+ is needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "iam-sim: npm not found" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
((major >= 20)) || { echo "iam-sim: Node $(node --version) is too old (20+ needed)" >&2; exit 1; }

hash="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
dir="$cache/iam-sim/$hash"
if [[ ! -f "$dir/.installed" ]]; then
  mkdir -p "$dir"
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  touch "$dir/.installed"
fi
echo "$dir"
