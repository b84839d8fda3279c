# The real upstream libraries the evaluation checks run against.
#
# Either `inputs` (the flake's own inputs, on a Nix machine: `checks.<system>.nix-eval`) or
# `inputsDir`, a folder holding the unpacked source snapshots of ../shared/nix-inputs
# (nixpkgs-lib = nix-community/nixpkgs.lib, pyproject-nix, uv2nix, build-system-pkgs), which
# scripts/nix-check.sh unpacks for `make test`. Nothing here is a copy or stub of these libraries.
{
  inputsDir ? null,
  inputs ? null,
}:
if inputs != null then
  {
    inherit (inputs) lib;
    pyproject-nix = inputs.pyproject-nix;
    uv2nix = inputs.uv2nix;
    pyproject-build-systems = inputs.pyproject-build-systems;
  }
else
  assert inputsDir != null || throw "nix/checks: pass --argstr inputsDir DIR (unpacked ../shared/nix-inputs)";
  let
    dir = /. + inputsDir;
    lib = import (dir + "/nixpkgs-lib/lib");
    pyproject-nix = import (dir + "/pyproject-nix") { inherit lib; };
    uv2nix = import (dir + "/uv2nix") { inherit lib pyproject-nix; };
    # Non-flake entry point: the same { sdist, wheel, default, overlays } the flake exports.
    pyproject-build-systems = import (dir + "/build-system-pkgs") { inherit lib pyproject-nix uv2nix; };
  in
  {
    inherit
      lib
      pyproject-nix
      uv2nix
      pyproject-build-systems
      ;
  }
