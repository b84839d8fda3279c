#!/usr/bin/env bash
# Nix checks that run without nixpkgs (Debian's nix-bin is enough); `make nix-check` runs this.
#   1. every .nix file parses,
#   2. the pure-lib tests in nix/lib/tests.nix pass ("N passed, N failed"),
#   3. the flake's shape: inputs consumed by outputs, modules imported, host imports them,
#   4. flake.lock matches flake.nix (and, with the snapshots, their revisions and NAR hashes),
#   5. with the source snapshots of ../shared/nix-inputs (real nixpkgs lib, pyproject.nix, uv2nix,
#      build-system-pkgs; NIX_INPUTS_DIR overrides the folder), the evaluation checks of
#      nix/checks/: uv2nix over python/uv.lock (+ wheel collisions from python/.venv), the
#      VM-test nodes under read-only nixpkgs, the kernel fake, the modules and the host.
# Builds, VM tests and evaluation against nixpkgs itself need a Nix machine: `nix flake check`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nix-instantiate >/dev/null || { echo "nix-instantiate missing: apt-get install nix-bin" >&2; exit 1; }

# A bare nix-bin may have no writable store/state dirs and no nixbld group; pure evaluation needs none.
export NIX_STATE_DIR="${NIX_STATE_DIR:-${TMPDIR:-/tmp}/emily-nix-state}"
mkdir -p "$NIX_STATE_DIR"
export NIX_CONFIG="build-users-group =${NIX_CONFIG:+
$NIX_CONFIG}"
nix_eval() { nix-instantiate --eval --strict --json "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); v=d[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v, indent=2))" "$1"; }

failed=0
# run NAME CMD...: runs CMD; prints its stdout line, or "FAIL NAME" and its stderr.
run() {
  local name=$1 out err
  shift
  err=$(mktemp)
  if out=$("$@" 2>"$err"); then
    [ -n "$out" ] && echo "$out"
  else
    echo "FAIL $name:" >&2
    cat "$err" >&2
    failed=1
  fi
  rm -f "$err"
}

n=0
while IFS= read -r -d '' f; do
  nix-instantiate --parse "$f" >/dev/null
  n=$((n + 1))
done < <(find . -name '*.nix' -not -path './python/.venv/*' -not -path './.git/*' -print0)
echo "nix parse: $n files ok"

lib_result=$(nix_eval nix/lib/tests.nix)
echo "nix lib tests: $(field summary <<<"$lib_result")"
if [ "$(field failed <<<"$lib_result")" != "0" ]; then
  field failures <<<"$lib_result" >&2
  exit 1
fi

shape=$(nix_eval nix/lib/shape-check.nix)
if [ "$(field problems <<<"$shape")" != "[]" ]; then
  echo "flake shape problems:" >&2
  field problems <<<"$shape" >&2
  exit 1
fi
echo "flake shape: $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["declared"]), "inputs consumed,", len(d["moduleFiles"]), "modules imported, host imports them")' <<<"$shape")"

inputs_json=$(nix_eval -E '(import ./flake.nix).inputs')
snapshots="${NIX_INPUTS_DIR:-../shared/nix-inputs}"
archives=(nixpkgs-lib pyproject-nix uv2nix build-system-pkgs)
have=1
for a in "${archives[@]}"; do [ -f "$snapshots/$a.tar.gz" ] || have=0; done
if [ "$have" = 0 ]; then
  run flake.lock python3 scripts/nix-lock-check.py "$inputs_json"
  echo "nix evaluation checks: skipped, no source snapshots at $snapshots (CI has them; see README, What is verified where)"
  exit "$failed"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/emily-nix-inputs.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for a in "${archives[@]}"; do tar -xzf "$snapshots/$a.tar.gz" -C "$dir"; done

run flake.lock python3 scripts/nix-lock-check.py "$inputs_json" "$dir" "$snapshots/README.md"

uv=$(mktemp)
if nix_eval nix/checks/uv2nix.nix --argstr inputsDir "$dir" >"$uv" 2>"$uv.err"; then
  echo "uv2nix: $(field summary <"$uv")"
  run wheel-collisions python3 scripts/nix-wheel-collisions.py <"$uv"
else
  echo "FAIL uv2nix:" >&2
  cat "$uv.err" >&2
  failed=1
fi
rm -f "$uv" "$uv.err"

for check in test-nodes kernel modules; do
  out=$(mktemp)
  if nix_eval "nix/checks/$check.nix" --argstr inputsDir "$dir" >"$out" 2>"$out.err"; then
    echo "$check: $(field summary <"$out")"
  else
    echo "FAIL $check:" >&2
    cat "$out.err" >&2
    failed=1
  fi
  rm -f "$out" "$out.err"
done
exit "$failed"
