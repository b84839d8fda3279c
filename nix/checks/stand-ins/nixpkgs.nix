# Stand-in for nixos/modules/misc/nixpkgs.nix (the normal, writable `nixpkgs.*` options): the
# declarations of what our modules and hosts define, and `_module.args.pkgs`. Upstream builds
# pkgs from these options; here the package set is the stand-in of ./pkgs.nix, passed in as
# the module argument `standInPkgs`.
{
  lib,
  standInPkgs,
  ...
}:
let
  inherit (lib) mkOption types;
in
{
  options.nixpkgs = {
    pkgs = mkOption {
      type = types.pkgs;
      default = standInPkgs;
    };
    config = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    overlays = mkOption {
      type = types.listOf (types.functionTo (types.functionTo (types.attrsOf types.anything)));
      default = [ ];
    };
    hostPlatform = mkOption {
      type = types.either types.str types.attrs;
      default = "x86_64-linux";
    };
    system = mkOption {
      type = types.str;
      default = "x86_64-linux";
    };
  };
  config._module.args.pkgs = standInPkgs;
}
