# Evaluation-failure tests: configurations the modules must refuse, with the reason. Nothing
# boots; each case evaluates a NixOS system and inspects its failed assertions.
{ pkgs, self }:
let
  inherit (pkgs) lib;
  evalWith =
    module:
    (import "${pkgs.path}/nixos/lib/eval-config.nix" {
      inherit (pkgs.stdenv.hostPlatform) system;
      modules = [
        self.nixosModules.default
        {
          boot.loader.grub.enable = false;
          fileSystems."/".device = "/dev/null";
          system.stateVersion = "26.05";
        }
        module
      ];
    }).config;
  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  # Every case names the substrings its failure message must contain.
  cases = {
    sglang-on-pascal = {
      module = {
        services.emily.hardware.gpu.computeCapability = "6.1";
        services.emily.inference = {
          enable = true;
          backend = "sglang";
          model = "/models/awq";
          sglangPackage = pkgs.hello;
        };
      };
      expect = [
        "sm_75"
        "sm_61"
        "llama-cpp"
      ];
    };
    cilium-on-old-kernel = {
      module = {
        # Only the version is read during evaluation; nothing is built, so no old kernel is needed.
        boot.kernelPackages = pkgs.linuxPackages // {
          kernel = pkgs.linuxPackages.kernel // {
            version = "5.10.240";
          };
        };
        services.emily.observability = {
          enable = true;
          langfuse.enable = false;
        };
      };
      expect = [
        "5.15"
        "boot.kernelPackages"
      ];
    };
    secret-in-plain-settings = {
      module = {
        services.emily.memory.enable = true;
        services.emily.settings.database.dsn = "postgresql://u:hunter2@db/emily";
      };
      expect = [
        "database.dsn"
        "services.emily.secrets"
      ];
    };
    agents-without-token = {
      module = {
        services.emily.memory.enable = true;
        services.emily.agents.enable = true;
      };
      expect = [ "tokenFile" ];
    };
    gguf-with-sglang = {
      module = {
        services.emily.hardware.gpu.computeCapability = "8.0";
        services.emily.inference = {
          enable = true;
          backend = "sglang";
          quantization = "gguf";
          model = "/models/m";
          sglangPackage = pkgs.hello;
        };
      };
      expect = [ "AWQ" ];
    };
  };
  check =
    name: case:
    let
      messages = failed (evalWith case.module);
      hit = lib.any (m: lib.all (s: lib.hasInfix s m) case.expect) messages;
    in
    if hit then
      "${name}: refused as expected"
    else
      throw "${name}: expected a failed assertion mentioning ${toString case.expect}, got ${builtins.toJSON messages}";
  # Control: the same modules accept a sane configuration (no false alarms).
  accepted = failed (evalWith {
    services.emily.hardware.gpu.computeCapability = "8.0";
    services.emily.inference = {
      enable = true;
      backend = "sglang";
      model = "/models/awq";
      sglangPackage = pkgs.hello;
    };
  });
in
assert accepted == [ ] || throw "sglang on sm_80 was refused: ${builtins.toJSON accepted}";
pkgs.writeText "emily-assertion-tests" (lib.concatStringsSep "\n" (lib.mapAttrsToList check cases) + "\n")
