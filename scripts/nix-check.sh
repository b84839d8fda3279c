#!/usr/bin/env bash
# Nix checks that run without nixpkgs (a bare Debian nix-bin is enough):
#   1. every .nix file parses,
#   2. the pure-lib tests in nix/lib/tests.nix pass ("N passed, N failed"),
#   3. the flake's shape: inputs consumed by outputs, modules imported, host imports them.
# Evaluation against nixpkgs, builds and VM tests need a Nix machine: `nix flake check`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nix-instantiate >/dev/null || { echo "nix-instantiate missing: apt-get install nix-bin" >&2; exit 1; }

# A bare nix-bin may have no writable store/state dirs for the user; pure evaluation needs none.
export NIX_STATE_DIR="${NIX_STATE_DIR:-${TMPDIR:-/tmp}/emily-nix-state}"
mkdir -p "$NIX_STATE_DIR"
eval_json() { nix-instantiate --eval --strict --json "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); v=d[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v, indent=2))" "$1"; }

n=0
while IFS= read -r -d '' f; do
  nix-instantiate --parse "$f" >/dev/null
  n=$((n + 1))
done < <(find . -name '*.nix' -not -path './python/.venv/*' -not -path './.git/*' -print0)
echo "nix parse: $n files ok"

lib_result=$(eval_json nix/lib/tests.nix)
echo "nix lib tests: $(field summary <<<"$lib_result")"
if [ "$(field failed <<<"$lib_result")" != "0" ]; then
  field failures <<<"$lib_result" >&2
  exit 1
fi

shape=$(eval_json nix/lib/shape-check.nix)
if [ "$(field problems <<<"$shape")" != "[]" ]; then
  echo "flake shape problems:" >&2
  field problems <<<"$shape" >&2
  exit 1
fi
echo "flake shape: $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["declared"]), "inputs consumed,", len(d["moduleFiles"]), "modules imported, host imports them")' <<<"$shape")"
