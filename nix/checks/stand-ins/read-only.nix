# nixos/modules/misc/nixpkgs/read-only.nix, mirrored option for option from NixOS/nixpkgs @
# 196f6a812b310e3179afcf48bf2907853246dcad (the revision the code index holds). It is what a
# VM-test node imports: nixos/lib/testing/nodes.nix (@ 003d58163f469fbeb0d51e4ef8d46af622759627)
# sets, for every node, `defaults = mkIf config.node.pkgsReadOnly { nixpkgs.pkgs = config.node.pkgs;
# imports = [ ../../modules/misc/nixpkgs/read-only.nix ]; }`, and `node.pkgsReadOnly` defaults to
# `node.pkgs != null`, which pkgs.testers.runNixOSTest makes true (`node.pkgs = pkgsLinux;`).
# The only change: `disabledModules` names our stand-in of nixpkgs.nix instead of upstream's.

# A replacement for the traditional nixpkgs module, such that none of the modules
# can add their own configuration. This ensures that the Nixpkgs configuration is
# exactly as the user intends.
{ lib, config, ... }:

let
  cfg = config.nixpkgs;
  inherit (lib) mkOption types;

in
{
  disabledModules = [
    ./nixpkgs.nix
  ];
  options = {
    nixpkgs = {
      pkgs = mkOption {
        type = lib.types.pkgs;
        description = ''The pkgs module argument.'';
      };
      config = mkOption {
        internal = true;
        type = types.unique { message = "nixpkgs.config is set to read-only"; } types.anything;
        description = ''
          The Nixpkgs `config` that `pkgs` was initialized with.
        '';
      };
      overlays = mkOption {
        internal = true;
        type = types.unique { message = "nixpkgs.overlays is set to read-only"; } types.anything;
        description = ''
          The Nixpkgs overlays that `pkgs` was initialized with.
        '';
      };
      hostPlatform = mkOption {
        internal = true;
        readOnly = true;
        description = ''
          The platform of the machine that is running the NixOS configuration.
        '';
      };
      buildPlatform = mkOption {
        internal = true;
        readOnly = true;
        description = ''
          The platform of the machine that built the NixOS configuration.
        '';
      };
      # NOTE: do not add the legacy options such as localSystem here. Let's keep
      #       this module simple and let module authors upgrade their code instead.
    };
  };
  config = {
    _module.args.pkgs =
      # find mistaken definitions
      builtins.seq cfg.config builtins.seq cfg.overlays builtins.seq cfg.hostPlatform builtins.seq
        cfg.buildPlatform
        cfg.pkgs.__splicedPackages;
    nixpkgs.config = cfg.pkgs.config;
    nixpkgs.overlays = cfg.pkgs.overlays;
    nixpkgs.hostPlatform = cfg.pkgs.stdenv.hostPlatform;
    nixpkgs.buildPlatform = cfg.pkgs.stdenv.buildPlatform;
  };
}
