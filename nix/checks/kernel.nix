# tests/nixos/assertions.nix fakes an old kernel (only its version is read) to prove that the
# observability module refuses Cilium below 5.15. NixOS does not use boot.kernelPackages as
# given: nixos/modules/system/boot/kernel.nix applies
#   kernelPackages.extend (self: super: { kernel = super.kernel.override (…); })
# (mirrored in ./stand-ins/nixos.nix), and `extend` of a lib.makeExtensible set rebuilds from the
# original function. This check runs the fake the VM-test file uses (tests/nixos/lib/
# kernel-version.nix) through that apply with the real lib.makeExtensible/makeOverridable, and
# then through our modules: the version read back must be the fake one, and the Cilium
# assertion must fire.
{
  inputsDir ? null,
  inputs ? null,
}:
let
  e = import ./eval.nix { inherit inputsDir inputs; };
  inherit (e) lib;
  fakeVersion = "5.10.240";
  fake = import ../../tests/nixos/lib/kernel-version.nix {
    kernelPackages = e.standInPkgs.linuxPackages;
    version = fakeVersion;
  };
  system = e.evalNixos {
    modules = [
      ../../modules/default.nix
      {
        boot.kernelPackages = fake;
        services.emily.observability = {
          enable = true;
          langfuse.enable = false;
        };
      }
    ];
  };
  seen = system.config.boot.kernelPackages.kernel.version;
  failed = e.failedAssertions system.config;
  refused = lib.any (m: lib.hasInfix "5.15" m && lib.hasInfix fakeVersion m) failed;
in
assert
  seen == fakeVersion
  || throw "tests/nixos/lib/kernel-version.nix: NixOS reads kernel ${seen}, not the faked ${fakeVersion}: boot.kernelPackages' apply (kernelPackages.extend … super.kernel.override …) rebuilds the set from the original, discarding a `//` fake; fake with `extend` and an `override` that keeps the fake.";
assert
  refused
  || throw "kernel ${seen}: the Cilium assertion did not fire (failed assertions: ${builtins.toJSON failed})";
{
  summary = "faked kernel ${seen} survives boot.kernelPackages' extend/override; Cilium refused";
}
