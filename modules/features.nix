# Online features: a dedicated Redis (working memory + Feast online store) and the Feast
# feature server over a feature repository.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.features;
  inherit (lib) mkOption mkEnableOption types;
  redisCfg = config.services.redis.servers.emily;
  socket = "/run/redis-emily/redis.sock";
  featureStoreYaml = (pkgs.formats.yaml { }).generate "feature_store.yaml" {
    project = cfg.feast.project;
    provider = "local";
    registry = "/var/lib/emily/feast/registry.db";
    online_store = {
      type = "redis";
      connection_string = "127.0.0.1:${toString cfg.redis.port}";
    };
    entity_key_serialization_version = 3;
  };
in
{
  imports = [ ./common.nix ];

  options.services.emily.features = {
    enable = mkEnableOption "Emily's online stores: Redis and the Feast feature server";

    redis = {
      port = mkOption {
        type = types.port;
        default = 6379;
        description = "Loopback TCP port (Feast's Redis client); Emily itself uses the unix socket.";
      };
      maxMemory = mkOption {
        type = types.str;
        default = "4gb";
        description = "maxmemory; working-memory keys carry TTLs, so volatile-lru evicts only those.";
      };
    };

    feast = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Run `feast serve` over services.emily.features.feast.repository.";
      };
      package = lib.mkPackageOption pkgs [ "python3Packages" "feast" ] {
        nullable = true;
        default = null;
        example = "pkgs.python3Packages.feast";
        extraDescription = "A Python environment providing the `feast` CLI.";
      };
      repository = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "Feature repository (feature views, entities); feature_store.yaml is generated.";
      };
      project = mkOption {
        type = types.str;
        default = "emily";
        description = "Feast project name.";
      };
      port = mkOption {
        type = types.port;
        default = 6566;
        description = "Feature server port.";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the feature server port (Redis is never exposed).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !cfg.feast.enable || (cfg.feast.package != null && cfg.feast.repository != null);
        message = "services.emily.features.feast.enable needs services.emily.features.feast.package (a Python env with feast) and .repository (the feature definitions).";
      }
    ];

    services.redis.servers.emily = {
      enable = true;
      bind = "127.0.0.1";
      port = cfg.redis.port;
      unixSocket = socket;
      unixSocketPerm = 660;
      appendOnly = true;
      settings = {
        maxmemory = cfg.redis.maxMemory;
        maxmemory-policy = "volatile-lru";
      };
    };
    # The socket is group-accessible: the app user joins the redis-emily group.
    users.users.${emily.appUser}.extraGroups = [ (redisCfg.group or "redis-emily") ];
    users.users.${emily.user}.extraGroups = [ (redisCfg.group or "redis-emily") ];

    # No password on a loopback-only, group-restricted socket: the URL is not a secret.
    services.emily.secrets."redis.url" = lib.mkDefault (toString (pkgs.writeText "emily-redis-url" "unix://${socket}?db=0"));

    systemd.services.emily-feast = lib.mkIf cfg.feast.enable {
      description = "Emily: Feast feature server";
      wantedBy = [ "multi-user.target" ];
      after = [ "redis-emily.service" ];
      requires = [ "redis-emily.service" ];
      preStart = ''
        cp -rT --no-preserve=mode ${cfg.feast.repository} /var/lib/emily/feast/repo
        cp ${featureStoreYaml} /var/lib/emily/feast/repo/feature_store.yaml
        ${lib.getExe' cfg.feast.package "feast"} -c /var/lib/emily/feast/repo apply
      '';
      serviceConfig = elib.systemd.hardened // {
        DynamicUser = true;
        StateDirectory = "emily/feast";
        CacheDirectory = "emily/feast";
        Environment = [ "HOME=/var/lib/emily/feast" ];
        Restart = "on-failure";
        ExecStart = "${lib.getExe' cfg.feast.package "feast"} -c /var/lib/emily/feast/repo serve --host 127.0.0.1 --port ${toString cfg.feast.port}";
      };
    };

    networking.firewall.allowedTCPPorts = lib.optional (cfg.openFirewall && cfg.feast.enable) cfg.feast.port;
  };
}
