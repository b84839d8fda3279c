# Stand-ins for the few nixpkgs pieces that pyproject.nix's package set and uv2nix's builders
# call, so that pkgs/emily.nix can be evaluated here with the REAL lib, pyproject.nix, uv2nix and
# build-system-pkgs. Nothing is built: `stdenv.mkDerivation` returns its (fixed-point) attributes
# as an inert derivation-shaped attrset, fetchers return their arguments, hooks are names.
#
# The interpreter is modelled the way pyproject.nix's own test-suite models it (lib/test.nix,
# `mkPython`): the facts PEP 508/425 marker and wheel-tag evaluation read (implementation,
# version, platform, glibc), nothing else.
{ lib }:
let
  platform = lib.systems.elaborate "x86_64-linux";

  # glibc: nixpkgs has shipped >= 2.40 since 24.11; the lock's wheels top out at manylinux_2_28,
  # so any glibc >= 2.28 selects the same wheels.
  libc = {
    pname = "glibc";
    version = "2.40";
    linuxHeaders.version = "6.12";
  };

  drv =
    name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = "/stand-in/${name}";
      drvPath = "/stand-in/${name}.drv";
      meta = { };
    }
    // attrs;

  # mkDerivation (attrs | finalAttrs: attrs), with overrideAttrs (old: ..) and (final: prev: ..)
  # composed like nixpkgs' (lib.extends + lib.toExtension); passthru is exposed on the result.
  mkDerivation =
    fpOrAttrs:
    let
      mk =
        f:
        let
          attrs = lib.fix f;
          name = attrs.name or "${attrs.pname}-${attrs.version}";
        in
        attrs
        // (attrs.passthru or { })
        // {
          type = "derivation";
          inherit name;
          # The package name, so a venv's NIX_PYPROJECT_DEPS lists what it links.
          outPath = "/stand-in/${attrs.pname or name}";
          drvPath = "/stand-in/${attrs.pname or name}.drv";
          meta = attrs.meta or { };
          overrideAttrs = g: mk (lib.extends (lib.toExtension g) f);
        };
    in
    mk (if lib.isFunction fpOrAttrs then fpOrAttrs else (_: fpOrAttrs));

  stdenv = {
    inherit mkDerivation;
    hostPlatform = platform;
    buildPlatform = platform;
    targetPlatform = platform;
    isLinux = true;
    isDarwin = false;
    cc = drv "gcc-wrapper" {
      inherit libc;
      cc = drv "gcc" { lib = drv "gcc-lib" { }; };
    };
  };

  mkPython =
    { major, minor }:
    let
      pythonVersion = "${major}.${minor}";
    in
    drv "python${major}${minor}" {
      pname = "python3";
      version = "${pythonVersion}.99";
      inherit stdenv pythonVersion;
      sitePackages = "lib/python${pythonVersion}/site-packages";
      pythonOlder = v: lib.versionOlder pythonVersion v;
      pythonAtLeast = v: lib.versionAtLeast pythonVersion v;
      passthru = {
        implementation = "cpython";
        inherit pythonVersion;
        sourceVersion = { inherit major minor; };
      };
    };

  pkgs = lib.fix (
    self:
    {
      inherit lib stdenv;
      pkgs = self;
      # The scope machinery is the real one (lib.makeScope / lib.callPackageWith).
      callPackage = lib.callPackageWith self;
      newScope = extra: lib.callPackageWith (self // extra);
      buildPackages = self;
      fetchurl = args: drv (args.name or (baseNameOf args.url)) { passthru.url = args.url; } // args;
      autoPatchelfHook = drv "auto-patchelf-hook" { };
      unzip = drv "unzip" { };
      pythonManylinuxPackages = {
        manylinux1 = [ ];
        manylinux2010 = [ ];
        manylinux2014 = [ ];
      };
      zlib = drv "zlib" { };
      # pyproject.nix's setup hooks (build/hooks): inert, only named.
      makeSetupHook = attrs: _script: drv attrs.name { };
      runCommand = name: _env: _script: drv name { };
      replaceVars = script: _replacements: drv (baseNameOf (toString script)) { };
      uv = drv "uv" { };
      python311 = mkPython {
        major = "3";
        minor = "11";
      };
      python312 = mkPython {
        major = "3";
        minor = "12";
      };
    }
  );
in
{
  inherit pkgs mkPython drv;
}
