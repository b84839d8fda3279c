# Evaluation-failure tests: configurations the modules must refuse, with the reason. Nothing
# boots; each case evaluates a NixOS system and inspects its failed assertions.
{ pkgs, self }:
let
  inherit (pkgs) lib;
  evalWith =
    module:
    (import "${pkgs.path}/nixos/lib/eval-config.nix" {
      inherit (pkgs.stdenv.hostPlatform) system;
      modules = [
        self.nixosModules.default
        {
          boot.loader.grub.enable = false;
          fileSystems."/".device = "/dev/null";
          system.stateVersion = "26.05";
        }
        module
      ];
    }).config;
  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  inherit (import ./lib/assertion-cases.nix { inherit pkgs; }) cases;
  check =
    name: case:
    let
      messages = failed (evalWith case.module);
      hit = lib.any (m: lib.all (s: lib.hasInfix s m) case.expect) messages;
    in
    if hit then
      "${name}: refused as expected"
    else
      throw "${name}: expected a failed assertion mentioning ${toString case.expect}, got ${builtins.toJSON messages}";
  # Control: the same modules accept a sane configuration (no false alarms).
  accepted = failed (evalWith (import ./lib/assertion-cases.nix { inherit pkgs; }).accepted);
in
assert accepted == [ ] || throw "sglang on sm_80 was refused: ${builtins.toJSON accepted}";
pkgs.writeText "emily-assertion-tests" (lib.concatStringsSep "\n" (lib.mapAttrsToList check cases) + "\n")
