#!/usr/bin/env bash
# Nix checks that run without nixpkgs: parse every .nix file. (The Nix issue extends this.)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nix-instantiate >/dev/null || { echo "nix-instantiate missing: apt-get install nix-bin" >&2; exit 1; }
n=0
while IFS= read -r -d '' f; do
  nix-instantiate --parse "$f" >/dev/null
  n=$((n + 1))
done < <(find . -name '*.nix' -not -path './python/.venv/*' -print0)
echo "nix parse: $n files ok"
