# GPU capability rules: which inference backend may run on which compute capability, and which
# CUDA/driver line a card needs. The Python rule table (emily.inference.hardware) is the source;
# when it has exported nix/lib/gpu-rules.json we read that, so Nix and Python cannot drift.
let
  s = import ./strings.nix;

  # Fallback mirror of the Python table, used only while gpu-rules.json does not exist.
  builtinRules = {
    sglang = {
      min_capability = "7.5";
      reason = "SGLang needs sm_75+ (its FlashInfer attention kernels and current CUDA 13 wheels do not support older GPUs)";
    };
    llama-cpp = {
      min_capability = null;
      reason = "llama.cpp runs on any GPU with CUDA 12 (sm_50+) and on CPU";
    };
  };

  jsonFile = ./gpu-rules.json;
  rulesFromJson = import ./gpu-rules-json.nix;
  rules = if builtins.pathExists jsonFile then rulesFromJson (builtins.fromJSON (builtins.readFile jsonFile)) else builtinRules;

  # "6.1", "sm_61", "61", 6.1 -> { major = 6; minor = 1; }
  parseCapability =
    cap:
    let
      str = if builtins.isString cap then cap else builtins.toJSON cap;
      dotted = builtins.match "(sm_)?([0-9]+)\\.([0-9]+)" str;
      packed = builtins.match "(sm_)?([0-9])([0-9])" str;
      pick = m: {
        major = builtins.fromJSON (builtins.elemAt m 1);
        minor = builtins.fromJSON (builtins.elemAt m 2);
      };
    in
    if dotted != null then
      pick dotted
    else if packed != null then
      pick packed
    else
      throw "not a CUDA compute capability: ${str} (expected e.g. \"6.1\" or \"sm_61\")";

  asNumber = cap: let c = parseCapability cap; in c.major * 10 + c.minor;
  capabilityAtLeast = cap: minimum: asNumber cap >= asNumber minimum;
  smName = cap: "sm_${toString (asNumber cap)}";
  dotted = cap: let c = parseCapability cap; in "${toString c.major}.${toString c.minor}";

  # CUDA 13 dropped Maxwell, Pascal and Volta (sm_50..sm_72); the 580 driver branch is the last
  # one that drives them, so those cards stay on CUDA 12 + driver 580.
  cuda13MinCapability = "7.5";
  needsLegacyStack = cap: cap != null && !(capabilityAtLeast cap cuda13MinCapability);

  verdict =
    backend: cap:
    let
      rule = rules.${backend} or (throw "unknown inference backend ${backend}");
      min = rule.min_capability;
    in
    if min == null then
      {
        inherit backend;
        ok = true;
        reason = rule.reason;
      }
    else if cap == null then
      {
        inherit backend;
        ok = false;
        reason = "${rule.reason}; no GPU declared";
      }
    else
      {
        inherit backend;
        ok = capabilityAtLeast cap min;
        reason =
          if capabilityAtLeast cap min then
            "${smName cap} >= ${smName min}"
          else
            "${rule.reason}; this GPU is ${smName cap}";
      };
in
{
  inherit
    rules
    parseCapability
    capabilityAtLeast
    smName
    dotted
    needsLegacyStack
    verdict
    ;
  usesJsonRules = builtins.pathExists jsonFile;
  backends = builtins.attrNames rules;
  backendOk = backend: cap: (verdict backend cap).ok;
  cudaMajor = cap: if needsLegacyStack cap then 12 else 13;
  # Attribute name under config.boot.kernelPackages.nvidiaPackages.
  driverPackageName = cap: if needsLegacyStack cap then "legacy_580" else "production";
  # nixpkgs' cudaCapabilities wants "6.1", not "sm_61".
  cudaCapabilities = cap: [ (dotted cap) ];
  refusalMessage =
    backend: cap:
    "services.emily.inference.backend = \"${backend}\" cannot run here: ${(verdict backend cap).reason}. "
    + "Use backend = \"llama-cpp\" (GGUF) on this GPU, or declare a GPU with a higher computeCapability.";
  inherit (s) toUpper;
}
