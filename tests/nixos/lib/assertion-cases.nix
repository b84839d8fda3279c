# Configurations the modules must refuse, each with the substrings its failure message must
# contain, and one they must accept. Evaluated against nixpkgs by ../assertions.nix
# (`checks.assertions`) and against the option stand-ins by nix/checks/modules.nix (`make test`).
{ pkgs }:
{
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
      boot.kernelPackages = import ./kernel-version.nix {
        kernelPackages = pkgs.linuxPackages;
        version = "5.10.240";
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
  memory-and-mlflow-share-a-database = {
    module = {
      services.emily.memory = {
        enable = true;
        snapshots.enable = false;
      };
      services.emily.mlops = {
        enable = true;
        database = "emily";
      };
    };
    expect = [
      "services.emily.mlops.database"
      "one owner"
    ];
  };
  feature-server-open-without-auth = {
    module = {
      services.emily.memory = {
        enable = true;
        snapshots.enable = false;
      };
      services.emily.features = {
        enable = true;
        server.host = "0.0.0.0";
      };
    };
    expect = [
      "services.emily.features.server.host"
      "oidc"
    ];
  };
  mlflow-open-without-auth = {
    module = {
      services.emily.mlops = {
        enable = true;
        host = "0.0.0.0";
      };
    };
    expect = [ "services.emily.mlops.auth.adminPasswordFile" ];
  };
  dvc-s3-remote-without-url = {
    module = {
      services.emily.mlops = {
        enable = true;
        pipeline.remote.type = "s3";
      };
    };
    expect = [ "remote.s3.url" ];
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

  # Control: the same modules accept a sane configuration (no false alarms).
  accepted = {
    services.emily.hardware.gpu.computeCapability = "8.0";
    services.emily.inference = {
      enable = true;
      backend = "sglang";
      model = "/models/awq";
      sglangPackage = pkgs.hello;
    };
  };
}
