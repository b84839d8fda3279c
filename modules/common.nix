# Options every Emily service shares: the package, the Python settings (rendered to EMILY_*),
# secrets delivered as systemd credentials, the host's hardware facts and the system users.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  cfg = config.services.emily;
  inherit (lib) mkOption types;
  jsonType = (pkgs.formats.json { }).type;
  # `or false`: each service module can be imported alone, without the others' options.
  anyEnabled = lib.any (m: cfg.${m}.enable or false) [
    "memory"
    "inference"
    "agents"
    "mlops"
    "features"
  ];
in
{
  options.services.emily = {
    package = lib.mkPackageOption pkgs "emily" {
      extraDescription = ''
        The Emily application: a Python virtualenv built from python/uv.lock by uv2nix. The
        flake's `nixosModules.*` set it (with `lib.mkDefault`) to that build for this system's
        pkgs; `pkgs.emily` exists where the flake's `overlays.default` is applied.
      '';
    };

    settings = mkOption {
      type = types.submodule { freeformType = jsonType; };
      default = { };
      example = lib.literalExpression ''
        {
          log_level = "info";
          database = { hnsw_m = 24; ef_search = 100; };
          inference.deadline_s = 30;
        }
      '';
      description = ''
        emily.config.Settings, as a nested attrset. Rendered to the environment of every Emily
        unit: `database.hnsw_m = 24` becomes `EMILY_DATABASE__HNSW_M=24`. Secret settings
        (${lib.concatStringsSep ", " elib.env.secretPaths}) are refused here; use `secrets`.
      '';
    };

    secrets = mkOption {
      type = types.attrsOf types.path;
      default = { };
      example = {
        "database.dsn" = "/run/agenix/emily-database-dsn";
      };
      description = ''
        Secret settings, by dotted setting path, mapped to a file on the host (agenix, sops-nix,
        or any root-readable path outside the store). Each one is handed to the units with
        systemd `LoadCredential` and read by Emily through `EMILY_<PATH>_FILE=%d/<id>`, so the
        value never enters the Nix store or the unit's environment.
      '';
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      readOnly = true;
      description = "The EMILY_* environment rendered from settings and secrets (for inspection and for the units).";
    };

    loadCredential = mkOption {
      type = types.listOf types.str;
      readOnly = true;
      description = "LoadCredential= entries for the secrets.";
    };

    user = mkOption {
      type = types.str;
      default = "emily";
      description = "System user that owns the database (migrations, maintenance, backups).";
    };

    appUser = mkOption {
      type = types.str;
      default = "emily-app";
      description = "System user the long-running services (agents API, feature server) run as.";
    };

    group = mkOption {
      type = types.str;
      default = "emily";
      description = "Group shared by the Emily users (read access to models and artifacts).";
    };

    hardware = {
      ramMB = mkOption {
        type = types.ints.positive;
        default = 8192;
        description = "Physical memory in MiB; sizes PostgreSQL (shared_buffers = 25%, effective_cache_size = 75%).";
      };
      cores = mkOption {
        type = types.ints.positive;
        default = 4;
        description = "CPU threads; sizes parallel workers and llama.cpp threads.";
      };
      storage = mkOption {
        type = types.enum [
          "hdd"
          "ssd"
        ];
        default = "ssd";
        description = "Medium under the database: sets random_page_cost/effective_io_concurrency and ZFS recordsize.";
      };
      zfs = mkOption {
        type = types.bool;
        default = false;
        description = "Whether the data directories live on ZFS (turns off full_page_writes and WAL recycling).";
      };
      gpu = {
        computeCapability = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "6.1";
          description = "CUDA compute capability of the GPU (null: no GPU). Decides which inference backend may run and which CUDA/driver line is installed.";
        };
        name = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "Tesla P4";
          description = "Human name of the GPU, for messages.";
        };
      };
    };
  };

  config = lib.mkMerge [
   {
    services.emily.environment =
      {
        EMILY_ENVIRONMENT = "production";
        EMILY_LOG_FORMAT = "json";
      }
      // elib.env.toEnv cfg.settings
      // elib.env.secretEnv cfg.secrets;
    services.emily.loadCredential = elib.env.loadCredential cfg.secrets;
   }
   (lib.mkIf anyEnabled {

    assertions = [
      {
        assertion = elib.env.secretsIn cfg.settings == [ ];
        message = "services.emily.settings contains secret setting(s) ${lib.concatStringsSep ", " (elib.env.secretsIn cfg.settings)}; these would land in the world-readable Nix store. Move each to services.emily.secrets.\"<path>\" = \"/run/agenix/<file>\".";
      }
      {
        assertion = lib.all (p: builtins.elem p elib.env.credentialPaths) (builtins.attrNames cfg.secrets);
        message = "services.emily.secrets has unknown setting path(s) ${lib.concatStringsSep ", " (lib.filter (p: !(builtins.elem p elib.env.credentialPaths)) (builtins.attrNames cfg.secrets))}; settings that may come from credentials: ${lib.concatStringsSep ", " elib.env.credentialPaths}.";
      }
    ];

    # Each unit adds EMILY_STATE_DIR=/var/lib/emily/<unit> (its own StateDirectory), so units
    # running as different users never fight over the ownership of one directory.
    users.groups.${cfg.group} = { };
    users.users.${cfg.user} = {
      isSystemUser = true;
      inherit (cfg) group;
      description = "Emily Sovereign database owner";
    };
    users.users.${cfg.appUser} = {
      isSystemUser = true;
      inherit (cfg) group;
      description = "Emily Sovereign services";
    };

    environment.systemPackages = [ cfg.package ];
   })
  ];
}
