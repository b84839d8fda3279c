# The VM tests' nodes evaluated the way pkgs.testers.runNixOSTest evaluates them: with
# `node.pkgs` set, so nixos/modules/misc/nixpkgs/read-only.nix replaces the nixpkgs module and
# `nixpkgs.overlays` must have exactly one definition (its own). Each node must then evaluate
# with no failed assertion and with every unit's settings, environment and commands rendered.
{
  inputsDir ? null,
  inputs ? null,
}:
let
  e = import ./eval.nix { inherit inputsDir inputs; };
  inherit (e) lib;
  tests = [
    "memory"
    "agents"
  ];
  evalNode =
    name:
    let
      test = import (../../tests/nixos + "/${name}.nix") {
        pkgs = e.standInPkgs;
        inherit (e) self;
      };
      node = e.evalNixos {
        readOnly = true;
        modules = [ test.nodes.machine ];
      };
      cfg = node.config;
      failed = e.failedAssertions cfg;
      units = lib.filterAttrs (n: _: lib.hasPrefix "emily-" n) cfg.systemd.services;
    in
    assert
      builtins.seq cfg.nixpkgs.overlays true
      && (failed == [ ] || throw "tests/nixos/${name}.nix: node fails assertions: ${builtins.toJSON failed}")
      && e.force cfg.services.emily.environment
      && e.force units;
    "${name} (${toString (builtins.length (lib.attrNames units))} emily units)";
in
{
  summary = "read-only test nodes evaluate: ${lib.concatStringsSep ", " (map evalNode tests)}";
}
