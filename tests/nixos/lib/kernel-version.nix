# A kernel package set that reports `version` and is otherwise `kernelPackages`, for evaluation
# tests that only read the version (nothing is built). NixOS does not use boot.kernelPackages as
# given: nixos/modules/system/boot/kernel.nix applies
#   kernelPackages.extend (self: super: { kernel = super.kernel.override (…); })
# so the fake must live inside the extensible set (`extend`, not `//`, which `extend` discards by
# rebuilding from the original function), and its `override` must return the fake itself (the
# real one would rebuild the real kernel). Checked by nix/checks/kernel.nix.
{ kernelPackages, version }:
kernelPackages.extend (
  _self: super: {
    kernel =
      let
        fake = super.kernel // {
          inherit version;
          modDirVersion = version;
          override = _: fake;
        };
      in
      fake;
  }
)
