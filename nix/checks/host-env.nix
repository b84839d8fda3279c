# What the c220g5 host's Emily units are started with, evaluated with the real lib over the
# stand-ins (see ./modules.nix): the rendered EMILY_* environment of every Emily unit and the
# LoadCredential ids. python/tests/nix/test_modules_settings.py loads each into emily.config.Settings.
{
  inputsDir ? null,
  inputs ? null,
}:
let
  e = import ./eval.nix { inherit inputsDir inputs; };
  inherit (e) lib;
  config =
    (e.evalNixos {
      modules = [
        e.self.nixosModules.default
        ../../hosts/c220g5.nix
      ];
    }).config;
  units = lib.filterAttrs (
    n: s: lib.hasPrefix "emily-" n && lib.any (lib.hasPrefix "EMILY_") (lib.attrNames s.environment)
  ) config.systemd.services;
in
{
  environment = config.services.emily.environment;
  credentials = map (c: builtins.head (lib.splitString ":" c)) config.services.emily.loadCredential;
  units = lib.mapAttrs (
    _: s: lib.filterAttrs (n: _: lib.hasPrefix "EMILY_" n) s.environment
  ) units;
}
