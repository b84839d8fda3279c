# Normalises nix/lib/gpu-rules.json (written by `emily doctor --rules-json` from the Python rule
# table in emily.inference.hardware) into { <backend> = { min_capability; reason; }; }.
# Backends are the top-level objects with a "why"; a backend that also runs on CPU has no
# minimum capability.
json:
let
  isBackend = name: builtins.isAttrs json.${name} && json.${name} ? why;
  norm =
    name:
    let
      e = json.${name};
    in
    {
      min_capability = if e.cpu or false then null else e.min_compute_capability or null;
      reason = e.why;
    };
in
builtins.listToAttrs (
  map (name: {
    inherit name;
    value = norm name;
  }) (builtins.filter isBackend (builtins.attrNames json))
)
