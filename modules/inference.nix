# The local LLM server: llama.cpp (GGUF; any GPU with CUDA 12, or CPU) or SGLang (AWQ; sm_75+).
# The GPU rules come from nix/lib/gpu.nix, which reads the same table the Python side uses.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.inference;
  inherit (lib) mkOption mkEnableOption types;
  cap = emily.hardware.gpu.computeCapability;
  gpuName = if emily.hardware.gpu.name != null then emily.hardware.gpu.name else "the GPU";
  legacy = elib.gpu.needsLegacyStack cap;
  # As nixpkgs' ollama module does with `acceleration`: the package option names the build,
  # the module applies the accelerator.
  llamaCpp =
    if cfg.cuda then
      cfg.llamaCppPackage.override (
        {
          cudaSupport = true;
        }
        # CUDA 13 dropped sm_50..sm_72: Pascal/Volta cards must be built against CUDA 12.
        // lib.optionalAttrs legacy { cudaPackages = pkgs.cudaPackages_12; }
      )
    else
      cfg.llamaCppPackage;
  url = "http://${cfg.host}:${toString cfg.port}/v1";
in
{
  imports = [ ./common.nix ];

  options.services.emily.inference = {
    enable = mkEnableOption "the local LLM server for Emily's inference gateway";

    backend = mkOption {
      type = types.enum [
        "llama-cpp"
        "sglang"
      ];
      default = "llama-cpp";
      description = "llama-cpp serves GGUF on any GPU or CPU; sglang serves AWQ and needs sm_75+.";
    };

    model = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/var/lib/emily/models/Phi-3-mini-4k-instruct-q4.gguf";
      description = "Model file (GGUF for llama-cpp) or directory (AWQ checkpoint for sglang). Not in the store: models are large and licensed per deployment.";
    };

    quantization = mkOption {
      type = types.enum [
        "gguf"
        "awq"
      ];
      default = if cfg.backend == "sglang" then "awq" else "gguf";
      defaultText = lib.literalExpression ''if backend == "sglang" then "awq" else "gguf"'';
      description = "Weight format: GGUF (llama.cpp's k-quants) or AWQ (SGLang).";
    };

    cuda = mkOption {
      type = types.bool;
      default = cap != null;
      defaultText = lib.literalExpression "config.services.emily.hardware.gpu.computeCapability != null";
      description = "Build and run with CUDA. Pascal..Volta get CUDA 12 and the 580 driver branch.";
    };

    llamaCppPackage = lib.mkPackageOption pkgs "llama-cpp" {
      extraDescription = ''
        It provides llama-server. With `cuda` the unit runs
        `llamaCppPackage.override { cudaSupport = true; }`, built against cudaPackages_12 on
        Pascal..Volta (CUDA 13 dropped sm_50..sm_72).
      '';
    };

    sglangPackage = lib.mkPackageOption pkgs [ "python3Packages" "sglang" ] {
      nullable = true;
      default = null;
      extraDescription = "A Python environment with sglang (not part of python/uv.lock: it pulls torch + CUDA 12.8/13 wheels).";
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Listen address.";
    };

    port = mkOption {
      type = types.port;
      default = 8081;
      description = "Listen port of the OpenAI-compatible API.";
    };

    contextSize = mkOption {
      type = types.ints.positive;
      default = 4096;
      description = "Context window (tokens).";
    };

    gpuLayers = mkOption {
      type = types.ints.unsigned;
      default = if cfg.cuda then 999 else 0;
      defaultText = lib.literalExpression "if cuda then 999 else 0";
      description = "Layers offloaded to the GPU (llama.cpp -ngl); 999 = all (Phi-3-mini Q4 fits the P4's 8 GB).";
    };

    threads = mkOption {
      type = types.ints.positive;
      default = lib.max 1 (emily.hardware.cores / 2);
      defaultText = lib.literalExpression "hardware.cores / 2";
      description = "CPU threads for the layers not on the GPU.";
    };

    parallel = mkOption {
      type = types.ints.positive;
      default = 4;
      description = "Concurrent request slots (continuous batching).";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra arguments for llama-server / sglang.launch_server.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the API port.";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = cfg.model != null;
            message = "services.emily.inference.model must name the model file (GGUF) or directory (AWQ), e.g. /var/lib/emily/models/Phi-3-mini-4k-instruct-q4.gguf.";
          }
          {
            assertion = cfg.backend != "sglang" || elib.gpu.backendOk "sglang" cap;
            message = elib.gpu.refusalMessage "sglang" cap + " (${gpuName})";
          }
          {
            assertion = cfg.backend != "sglang" || cfg.sglangPackage != null;
            message = "services.emily.inference.backend = \"sglang\" needs services.emily.inference.sglangPackage (a Python env with sglang; it is not in python/uv.lock).";
          }
          {
            assertion = (cfg.backend == "sglang") == (cfg.quantization == "awq");
            message = "services.emily.inference.quantization = \"${cfg.quantization}\" does not fit backend \"${cfg.backend}\": llama-cpp reads GGUF, sglang reads AWQ.";
          }
          {
            assertion = !cfg.cuda || cap != null;
            message = "services.emily.inference.cuda needs services.emily.hardware.gpu.computeCapability (e.g. \"6.1\" for a Tesla P4).";
          }
        ];

        # mkDefault on the leaf: a host setting inference.deadline_s must not drop the chain.
        services.emily.settings.inference.backends = lib.mkDefault [
          {
            name = "local";
            kind = cfg.backend;
            base_url = url;
          }
        ];

        systemd.services.emily-inference = {
          description = "Emily: ${cfg.backend} LLM server";
          wantedBy = [ "multi-user.target" ];
          after = [ "network.target" ];
          environment = lib.optionalAttrs cfg.cuda {
            CUDA_DEVICE_ORDER = "PCI_BUS_ID";
          };
          serviceConfig =
            elib.systemd.hardened
            // lib.optionalAttrs cfg.cuda elib.systemd.gpu
            // {
              DynamicUser = true;
              SupplementaryGroups = [ emily.group ];
              StateDirectory = "emily/inference";
              CacheDirectory = "emily/inference";
              Restart = "on-failure";
              RestartSec = 5;
              ExecStart =
                if cfg.backend == "llama-cpp" then
                  lib.escapeShellArgs (
                    [
                      (lib.getExe' llamaCpp "llama-server")
                      "--model"
                      cfg.model
                      "--host"
                      cfg.host
                      "--port"
                      (toString cfg.port)
                      "--ctx-size"
                      (toString cfg.contextSize)
                      "--n-gpu-layers"
                      (toString cfg.gpuLayers)
                      "--threads"
                      (toString cfg.threads)
                      "--parallel"
                      (toString cfg.parallel)
                      "--metrics"
                      "--jinja"
                    ]
                    ++ cfg.extraArgs
                  )
                else
                  lib.escapeShellArgs (
                    [
                      (lib.getExe' cfg.sglangPackage "python")
                      "-m"
                      "sglang.launch_server"
                      "--model-path"
                      cfg.model
                      "--quantization"
                      "awq"
                      "--host"
                      cfg.host
                      "--port"
                      (toString cfg.port)
                      "--context-length"
                      (toString cfg.contextSize)
                      "--enable-metrics"
                    ]
                    ++ cfg.extraArgs
                  );
            };
        };

        networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;
      }

      (lib.mkIf cfg.cuda {
        nixpkgs.config.allowUnfree = lib.mkDefault true;
        # Headless: loads the kernel module and installs the userspace driver; no X server runs.
        services.xserver.videoDrivers = [ "nvidia" ];
        hardware.nvidia = {
          # 580 is the last driver branch for Maxwell/Pascal/Volta (verified: nixpkgs'
          # nvidia-x11/default.nix defines nvidiaPackages.legacy_580 once 590+ dropped them).
          package = lib.mkDefault config.boot.kernelPackages.nvidiaPackages.${elib.gpu.driverPackageName cap};
          # The open kernel modules need Turing (sm_75) or newer.
          open = lib.mkDefault (!legacy);
          nvidiaPersistenced = lib.mkDefault true;
        };
        hardware.graphics.enable = lib.mkDefault true;
      })
    ]
  );
}
