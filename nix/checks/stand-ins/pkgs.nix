# A stand-in for the nixpkgs package set our NixOS modules, host and VM-test nodes read. The
# Python build pieces come from ./python-build.nix, so `(import pkgs/emily.nix { inherit pkgs; })`
# still evaluates with the real uv2nix; every other package is an inert derivation-shaped attrset.
#
# Kernels: `linuxPackages` / `linuxPackages_latest` are built with the real lib.makeExtensible and
# lib.makeOverridable, the way pkgs/top-level/linux-kernels.nix builds `packagesFor`, so that
# nixos/modules/system/boot/kernel.nix's `kernelPackages.extend (… super.kernel.override …)`
# (mirrored in ./nixos.nix) behaves as upstream. Versioned sets (`linuxPackages_6_12`, …) throw,
# as nixpkgs' aliases do once a branch reaches end of life, which can happen within a release.
{ lib }:
let
  python = import ./python-build.nix { inherit lib; };
  inherit (python) drv;

  platform = lib.systems.elaborate "x86_64-linux";

  mkKernel = lib.makeOverridable (
    {
      version,
      kernelPatches ? [ ],
      features ? { },
      randstructSeed ? "",
    }:
    drv "linux-${version}" {
      pname = "linux";
      inherit
        version
        kernelPatches
        features
        randstructSeed
        ;
      modDirVersion = version;
    }
  );
  kernelPackagesFor =
    kernel:
    lib.makeExtensible (self: {
      inherit kernel;
      nvidiaPackages = {
        production = drv "nvidia-x11-production-${self.kernel.version}" { };
        legacy_580 = drv "nvidia-x11-580-${self.kernel.version}" { };
      };
      zfs = drv "zfs-kernel-${self.kernel.version}" { };
    });

  versionedKernelThrow =
    name:
    throw "pkgs.${name} is a versioned kernel package set: nixpkgs removes these (leaving a `throw` alias) when the branch reaches end of life upstream, which can happen within a NixOS release. Use pkgs.linuxPackages (the release's default LTS) or pkgs.linuxPackages_latest.";

  postgresqlFor =
    version:
    let
      self = drv "postgresql-${version}" {
        pname = "postgresql";
        inherit version;
        psqlSchema = lib.versions.major version;
        withJIT = self;
        withoutJIT = self;
        withPackages = _: self;
        installedExtensions = [ ];
        pkgs = {
          pgvector = drv "pgvector" { };
        };
        meta.mainProgram = "psql";
      };
    in
    self;

  llamaCpp =
    args:
    drv "llama-cpp" {
      pname = "llama-cpp";
      meta.mainProgram = "llama-server";
      override = more: llamaCpp (args // more);
      passthru = args;
    };
in
lib.fix (
  self:
  python.pkgs
  // {
    _type = "pkgs";
    __splicedPackages = self;
    overlays = [ ];
    config = { };
    path = "/stand-in/nixpkgs";
    stdenv = python.pkgs.stdenv // {
      hostPlatform = platform;
      buildPlatform = platform;
    };
    callPackage = lib.callPackageWith self;
    newScope = extra: lib.callPackageWith (self // extra);
    buildPackages = self;

    writeText = name: text: drv name { inherit text; };
    writeTextDir = name: text: drv name { inherit text; };
    formats = {
      json = _: {
        type = lib.types.json;
        generate = name: value: drv name { inherit value; };
      };
      yaml = _: {
        type = lib.types.serializableValueWith { typeName = "YAML"; };
        generate = name: value: drv name { inherit value; };
      };
    };

    # What the overlay (flake.nix `overlays.default`) adds; the modules' package default.
    emily = drv "emily-env" { meta.mainProgram = "emily"; };

    postgresql_17 = postgresqlFor "17.7";
    postgresql_18 = postgresqlFor "18.1";
    postgresql = self.postgresql_17;

    llama-cpp = llamaCpp { };
    cudaPackages_12 = {
      cudaMajorVersion = "12";
    };

    linuxPackages = kernelPackagesFor (mkKernel {
      version = "6.12.60";
    });
    linuxPackages_latest = kernelPackagesFor (mkKernel {
      version = "6.18.2";
    });

    testers.runNixOSTest = test: test;
  }
  // lib.genAttrs [
    "linuxPackages_5_10"
    "linuxPackages_5_15"
    "linuxPackages_6_1"
    "linuxPackages_6_6"
    "linuxPackages_6_12"
    "linuxPackages_6_18"
  ] versionedKernelThrow
  // lib.genAttrs [
    "findutils"
    "coreutils"
    "zfs"
    "k3s"
    "cilium-cli"
    "hubble"
    "kubectl"
    "redis"
    "hello"
    "uv"
    "nixfmt"
    "nil"
  ] (name: drv name { pname = name; })
)
