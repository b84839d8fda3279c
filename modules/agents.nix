# The triune agent loop's HTTP API (`emily agents serve`, FastAPI under uvicorn).
{
  config,
  lib,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.agents;
  inherit (lib) mkOption mkEnableOption types;
in
{
  imports = [ ./common.nix ];

  options.services.emily.agents = {
    enable = mkEnableOption "the Emily agents API (`emily agents serve`)";

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Listen address (put a TLS reverse proxy or WireGuard in front for remote clients).";
    };

    port = mkOption {
      type = types.port;
      default = 8765;
      description = "Listen port.";
    };

    tokenFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/agenix/emily-api-token";
      description = "File with the bearer token clients must send; delivered with LoadCredential, never stored in the Nix store.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the API port.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.tokenFile != null;
        message = "services.emily.agents.tokenFile must point to a file holding the API bearer token (e.g. generated with `openssl rand -hex 32 > /run/agenix/emily-api-token`); the API refuses to run unauthenticated.";
      }
      {
        assertion = emily.memory.enable or false || emily.secrets ? "database.dsn";
        message = "services.emily.agents needs a database: enable services.emily.memory or set services.emily.secrets.\"database.dsn\".";
      }
    ];

    services.emily.settings.agents = {
      api_host = lib.mkDefault cfg.host;
      api_port = lib.mkDefault cfg.port;
    };
    services.emily.secrets = lib.mkIf (cfg.tokenFile != null) { "agents.api_token" = cfg.tokenFile; };

    systemd.services.emily-agents = {
      description = "Emily: agents API";
      wantedBy = [ "multi-user.target" ];
      after =
        [ "network.target" ]
        ++ lib.optional (emily.memory.enable or false) "emily-memory-migrate.service"
        ++ lib.optional (emily.inference.enable or false) "emily-inference.service"
        ++ lib.optional (emily.features.enable or false) "redis-emily.service";
      wants = lib.optional (emily.memory.enable or false) "emily-memory-migrate.service";
      environment = emily.environment // {
        EMILY_STATE_DIR = "/var/lib/emily/agents";
        EMILY_CACHE_DIR = "/var/cache/emily/agents";
      };
      serviceConfig = elib.systemd.hardened // {
        User = emily.appUser;
        Group = emily.group;
        StateDirectory = "emily/agents";
        CacheDirectory = "emily/agents";
        LoadCredential = emily.loadCredential;
        ExecStart = "${lib.getExe emily.package} agents serve";
        Restart = "on-failure";
        RestartSec = 5;
      };
    };

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;
  };
}
