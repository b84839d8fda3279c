# Shared by the evaluation checks: the real upstream libraries, the stand-in package set, the
# flake's outputs (its `outputs` function applied to the real libraries and the stand-in
# nixpkgs), and `evalNixos`, the real lib.evalModules over the NixOS option stand-ins.
{
  inputsDir ? null,
  inputs ? null,
}:
let
  up = import ./inputs.nix { inherit inputsDir inputs; };
  inherit (up) lib;
  standInPkgs = import ./stand-ins/pkgs.nix { inherit lib; };

  flake = import ../../flake.nix;
  self = flake.outputs {
    inherit self;
    nixpkgs = {
      inherit lib;
      outPath = "/stand-in/nixpkgs";
      legacyPackages.x86_64-linux = standInPkgs;
    };
    inherit (up) pyproject-nix uv2nix pyproject-build-systems;
  };

  evalNixos =
    {
      modules,
      # A VM-test node: nixos/lib/testing/nodes.nix's `defaults` for pkgsReadOnly nodes.
      readOnly ? false,
    }:
    lib.evalModules {
      specialArgs = { inherit standInPkgs; };
      modules = [
        ./stand-ins/nixos.nix
        ./stand-ins/nixpkgs.nix
      ]
      ++ lib.optional readOnly {
        nixpkgs.pkgs = standInPkgs;
        imports = [ ./stand-ins/read-only.nix ];
      }
      ++ modules;
    };

  failedAssertions =
    config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # Forces every value (strings, lists, attrs) below `value`; derivation-shaped attrsets are
  # forced by their outPath only (their attributes are stand-in internals).
  force =
    value:
    if lib.isDerivation value then
      builtins.seq value.outPath true
    else if lib.isAttrs value then
      lib.all force (lib.attrValues value)
    else if lib.isList value then
      lib.all force value
    else if lib.isFunction value then
      true
    else
      builtins.seq value true;
in
{
  inherit
    up
    lib
    standInPkgs
    self
    evalNixos
    failedAssertions
    force
    ;
}
