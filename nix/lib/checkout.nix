# What the DVC pipeline's checkout (modules/mlops.nix) copies from this repository, as a
# builtins.path filter on paths relative to the root: DVC's config, pipeline/ without the
# DVC-tracked outputs, and python/src (the stages' `deps`); never .git, the venv or tests.
let
  hasPrefix = pre: s: builtins.substring 0 (builtins.stringLength pre) s == pre;
  hasSuffix =
    suf: s:
    let
      n = builtins.stringLength s;
      m = builtins.stringLength suf;
    in
    n >= m && builtins.substring (n - m) m s == suf;
  hasInfix = inf: s: builtins.match ".*${inf}.*" s != null;
  top = [
    ".dvc"
    ".dvc/config"
    ".dvc/.gitignore"
    "pipeline"
    "python"
    "python/src"
  ];
  pipelineKept = [
    "pipeline/dvc.yaml"
    "pipeline/dvc.lock"
    "pipeline/params.yaml"
    "pipeline/data"
    "pipeline/data/extra"
    "pipeline/metrics"
    "pipeline/models"
    "pipeline/plots"
  ];
in
rec {
  # rel: "pipeline/dvc.yaml" (no leading slash); type: as builtins.readDir gives it.
  keep =
    rel: type:
    builtins.elem rel top
    || (
      hasPrefix "pipeline/" rel
      && (builtins.elem rel pipelineKept || hasPrefix "pipeline/data/extra/" rel || baseNameOf rel == ".gitignore")
    )
    || (
      hasPrefix "python/src/" rel
      && !(hasInfix "__pycache__" rel)
      && !(hasSuffix ".pyc" rel)
      && !(hasInfix "\\.egg-info" rel)
    );
  # builtins.path's `filter` for the repository at `root`.
  filter =
    root: path: type:
    keep (builtins.substring (builtins.stringLength (toString root) + 1) (-1) (toString path)) type;
  # The files builtins.path { path = root; filter = filter root; } copies, without copying:
  # directories the filter refuses are not entered, as builtins.path does.
  files =
    root:
    let
      walk =
        rel:
        let
          entries = builtins.readDir (if rel == "" then root else root + "/${rel}");
        in
        builtins.concatLists (
          map (
            name:
            let
              here = if rel == "" then name else "${rel}/${name}";
              type = entries.${name};
            in
            if !(keep here type) then
              [ ]
            else if type == "directory" then
              walk here
            else
              [ here ]
          ) (builtins.attrNames entries)
        );
    in
    walk "";
}
