# The feature store: a dedicated Redis (working memory + Feast's online store), Feast's SQL
# registry and offline store on our PostgreSQL (the role `features.db_role` owns its schema and
# reads the episodes), `emily features apply` (role, schema, views, registry objects), the Feast
# feature server (`feast serve`, configured by emily.stack.features like the local stack's) and
# `emily features materialize --incremental` on a timer.
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
  emilyExe = lib.getExe emily.package;
  memory = emily.memory.enable or false;
  database = emily.memory.database or "emily";
  pgUnits =
    [ "postgresql.service" ]
    ++ lib.optional (config.systemd.services ? postgresql-setup) "postgresql-setup.service";
  storeUnits = cfg.server.enable || cfg.materialize.enable;
  # Peer auth on the socket: no password anywhere, so these files may live in the store; a
  # remote database overrides them with real secret files.
  offlineDsn = "postgresql:///${database}?host=/run/postgresql&user=${cfg.dbRole}";
  registryUrl = "postgresql+psycopg://${cfg.dbRole}@/${database}?host=/run/postgresql";
  unit =
    {
      name,
      user,
      serviceConfig,
      after ? [ ],
    }:
    {
      after = pgUnits ++ [ "redis-emily.service" ] ++ lib.optional memory "emily-memory-migrate.service" ++ after;
      requires = [ "redis-emily.service" ];
      wants = lib.optional memory "emily-memory-migrate.service";
      environment = emily.environment // {
        EMILY_STATE_DIR = "/var/lib/emily/${name}";
        EMILY_CACHE_DIR = "/var/cache/emily/${name}";
        HOME = "/var/lib/emily/${name}";
        FEAST_USAGE = "False";
      };
      serviceConfig =
        elib.systemd.hardened
        // {
          User = user;
          Group = emily.group;
          StateDirectory = "emily/${name}";
          CacheDirectory = "emily/${name}";
          LoadCredential = emily.loadCredential;
        }
        // serviceConfig;
    };
in
{
  imports = [ ./common.nix ];

  options.services.emily.features = {
    enable = mkEnableOption "Emily's feature store: Redis, Feast's registry, the feature server and materialization";

    user = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_-]{0,31}";
      default = "emily-features";
      description = "System user of the feature server and of materialization (peer-mapped to `dbRole`).";
    };

    project = mkOption {
      type = types.strMatching "[a-z][a-z0-9_]{0,62}";
      default = "emily";
      description = "Feast project (`features.project`).";
    };

    dbRole = mkOption {
      type = types.strMatching "[a-z][a-z0-9_]{0,62}";
      default = "emily_features";
      description = "PostgreSQL role of Feast (`features.db_role`): owns `dbSchema`, reads the episodes.";
    };

    dbSchema = mkOption {
      type = types.strMatching "[a-z][a-z0-9_]{0,62}";
      default = "emily_features";
      description = "Schema of the source views, the SQL registry and the baselines (`features.db_schema`).";
    };

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
      database = mkOption {
        type = types.ints.between 0 15;
        default = 1;
        description = "Database index of the online store (`features.redis_db`; working memory uses 0).";
      };
    };

    server = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run the Feast feature server (`feast serve`); the agents read and push features through it.";
      };
      host = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Listen address.";
      };
      port = mkOption {
        type = types.port;
        default = 6566;
        description = "Listen port (`features.port`; with `host`, `features.server_url`).";
      };
      workers = mkOption {
        type = types.ints.positive;
        default = 2;
        description = "gunicorn workers (`features.workers`).";
      };
      maxRequests = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "Worker recycling after N requests (`features.max_requests`; 0: never, recycling stalls requests while a worker reloads the registry).";
      };
      registryCacheTtl = mkOption {
        type = types.ints.positive;
        default = 60;
        description = "Registry cache TTL in seconds (`features.registry_cache_ttl_s`).";
      };
    };

    auth = {
      mode = mkOption {
        type = types.enum [
          "none"
          "oidc"
        ];
        default = "none";
        description = ''
          `features.auth`. none: Feast's no_auth, allowed only with the server on loopback;
          oidc: tokens of an external IdP are checked against the repository's permissions.
          (`local`, the local stack's own issuer, has no systemd equivalent.)
        '';
      };
      discoveryUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://idp.example/realms/emily/.well-known/openid-configuration";
        description = "OIDC discovery document (`features.oidc_discovery_url`).";
      };
      clientId = mkOption {
        type = types.str;
        default = "emily-features";
        description = "OIDC client id; roles are read from resource_access.<id>.roles (`features.oidc_client_id`).";
      };
      tokenFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/agenix/emily-features-token";
        description = "Bearer token the Emily units send (`features.token`, by LoadCredential), e.g. kept fresh by the IdP's client.";
      };
    };

    materialize = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "`emily features materialize --incremental` on a timer.";
      };
      schedule = mkOption {
        type = types.str;
        default = "*:0/10";
        description = "systemd OnCalendar of the materialization.";
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
        assertion = !storeUnits || memory || emily.secrets ? "features.offline_dsn";
        message = "services.emily.features reads the episodes: enable services.emily.memory or set services.emily.secrets.\"features.offline_dsn\" (and \"features.registry_path\").";
      }
      {
        assertion = cfg.auth.mode != "none" || elib.net.isLoopback cfg.server.host;
        message = "services.emily.features.server.host (${cfg.server.host}) is not loopback and services.emily.features.auth.mode is \"none\": use auth.mode = \"oidc\" so the feature server checks tokens.";
      }
      {
        assertion = cfg.auth.mode != "oidc" || (cfg.auth.discoveryUrl != null && cfg.auth.tokenFile != null);
        message = "services.emily.features.auth.mode = \"oidc\" needs services.emily.features.auth.discoveryUrl and .tokenFile (the token the Emily units send).";
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
    users.users.${cfg.user} = {
      isSystemUser = true;
      inherit (emily) group;
      description = "Emily feature server";
    };

    services.emily.settings.features = {
      inherit (cfg) project;
      db_role = cfg.dbRole;
      db_schema = cfg.dbSchema;
      redis_db = cfg.redis.database;
      auth = cfg.auth.mode;
      port = cfg.server.port;
      workers = cfg.server.workers;
      max_requests = cfg.server.maxRequests;
      registry_cache_ttl_s = cfg.server.registryCacheTtl;
      oidc_client_id = cfg.auth.clientId;
      oidc_discovery_url = lib.mkIf (cfg.auth.discoveryUrl != null) cfg.auth.discoveryUrl;
      server_url = lib.mkIf cfg.server.enable (lib.mkDefault "http://${cfg.server.host}:${toString cfg.server.port}");
    };

    # No password on a loopback-only, group-restricted socket: the URL is not a secret.
    services.emily.secrets = {
      "redis.url" = lib.mkDefault (toString (pkgs.writeText "emily-redis-url" "unix://${socket}?db=0"));
      "features.redis_connection" = lib.mkDefault (
        toString (pkgs.writeText "emily-feast-redis" "127.0.0.1:${toString cfg.redis.port},db=${toString cfg.redis.database}")
      );
    }
    // lib.optionalAttrs memory {
      "features.offline_dsn" = lib.mkDefault (toString (pkgs.writeText "emily-features-dsn" offlineDsn));
      "features.registry_path" = lib.mkDefault (toString (pkgs.writeText "emily-feast-registry" registryUrl));
    }
    // lib.optionalAttrs (cfg.auth.tokenFile != null) { "features.token" = cfg.auth.tokenFile; };

    services.postgresql = lib.mkIf memory {
      ensureUsers = [
        {
          name = cfg.dbRole;
          ensureClauses.login = true;
        }
      ];
      # The feature server's user is the feature role; the owner may act as it too (apply
      # creates the views as the role that owns them).
      identMap = ''
        emily_peer ${cfg.user} ${cfg.dbRole}
        emily_peer ${emily.user} ${cfg.dbRole}
      '';
      authentication = lib.mkBefore ''
        local ${database} ${cfg.dbRole} peer map=emily_peer
      '';
    };

    # Role, schema, grants, source views and the registry's objects; idempotent, and a no-op
    # (no Feast import) when the definitions did not change.
    systemd.services.emily-features-apply = lib.mkIf storeUnits (
      unit {
        name = "features-apply";
        user = emily.user;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${emilyExe} features apply";
        };
      }
      // {
        description = "Emily: apply the feature repository (schema, views, SQL registry)";
        wantedBy = [ "multi-user.target" ];
      }
    );

    systemd.services.emily-feast = lib.mkIf cfg.server.enable (
      unit {
        name = "feast";
        user = cfg.user;
        after = [ "emily-features-apply.service" ];
        serviceConfig = {
          ExecStart = "${emilyExe} features serve --host ${cfg.server.host} --port ${toString cfg.server.port}";
          Restart = "on-failure";
          RestartSec = 5;
          # Loading Feast and the registry takes a while on a cold cache.
          TimeoutStartSec = "5min";
        };
      }
      // {
        description = "Emily: Feast feature server";
        wantedBy = [ "multi-user.target" ];
        wants = lib.optional memory "emily-memory-migrate.service" ++ [ "emily-features-apply.service" ];
      }
    );

    systemd.services.emily-features-materialize = lib.mkIf cfg.materialize.enable (
      unit {
        name = "features-materialize";
        user = cfg.user;
        after = [ "emily-features-apply.service" ];
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${emilyExe} features materialize --incremental";
          Nice = 10;
        };
      }
      // {
        description = "Emily: materialize new feature rows into the online store";
      }
    );
    systemd.timers.emily-features-materialize = lib.mkIf cfg.materialize.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.materialize.schedule;
        Persistent = true;
      };
    };

    networking.firewall.allowedTCPPorts = lib.optional (cfg.openFirewall && cfg.server.enable) cfg.server.port;
  };
}
