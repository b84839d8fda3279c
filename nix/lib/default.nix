# Pure helpers for the Emily modules, written with builtins only so that `nix-instantiate
# --eval --strict nix/lib/tests.nix` runs on any machine with nix, without nixpkgs.
{
  version = import ./version.nix;
  gpu = import ./gpu.nix;
  postgres = import ./postgres.nix;
  zfs = import ./zfs.nix;
  env = import ./env.nix;
  strings = import ./strings.nix;
  systemd = import ./systemd.nix;
  k8s = import ./k8s.nix;
  net = import ./net.nix;
  checkout = import ./checkout.nix;
}
