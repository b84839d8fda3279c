# MLflow tracking server: runs and traces in PostgreSQL, artifacts on disk (the ZFS
# `mlflow-artifacts` dataset), served by the mlflow that python/uv.lock pins.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.mlops;
  inherit (lib) mkOption mkEnableOption types;
  # Peer auth over the socket: the mlflow system user is the mlflow role, no password exists.
  backendStore = "postgresql+psycopg://${cfg.user}@/${cfg.database}?host=/run/postgresql";
  ownership = elib.postgres.dbOwnership {
    inherit (cfg) database;
    owner = cfg.user;
  };
in
{
  imports = [ ./common.nix ];

  options.services.emily.mlops = {
    enable = mkEnableOption "the MLflow tracking server on PostgreSQL";

    user = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_-]{0,31}";
      default = "mlflow";
      description = "System user and PostgreSQL role of the server.";
    };

    database = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_]{0,62}";
      default = "mlflow";
      description = ''
        PostgreSQL database of the backend store, owned by `user` (through `ensureDBOwnership`
        when the names are equal, else by the oneshot `emily-mlflow-db-owner`).
      '';
    };

    artifactsDir = mkOption {
      type = types.path;
      default = "/var/lib/emily/mlflow-artifacts";
      description = "Artifact store (served through the tracking server, --artifacts-destination).";
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Listen address.";
    };

    port = mkOption {
      type = types.port;
      default = 5000;
      description = "Listen port.";
    };

    workers = mkOption {
      type = types.ints.positive;
      default = 2;
      description = "Server workers.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the MLflow port.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !(emily.memory.enable or false) || emily.memory.database != cfg.database;
        message = "services.emily.mlops.database (${cfg.database}) is also services.emily.memory.database: a database has one owner (${emily.user} for memory, ${cfg.user} for MLflow); give MLflow its own.";
      }
    ];

    services.postgresql = {
      enable = true;
      ensureDatabases = [ cfg.database ];
      ensureUsers = [
        {
          name = cfg.user;
          inherit (ownership) ensureDBOwnership;
        }
      ];
    };

    systemd.services.emily-mlflow-db-owner = lib.mkIf (ownership.sql != null) (
      elib.postgres.ownerUnit {
        psql = lib.getExe' config.services.postgresql.finalPackage "psql";
        inherit (ownership) sql;
        inherit (cfg) database;
        owner = cfg.user;
        hardened = elib.systemd.hardened;
        before = [ "emily-mlflow.service" ];
      }
    );

    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.user;
      extraGroups = [ emily.group ];
    };
    users.groups.${cfg.user} = { };

    systemd.tmpfiles.rules = [ "d ${cfg.artifactsDir} 0750 ${cfg.user} ${emily.group} -" ];

    services.emily.settings.mlflow.tracking_uri = lib.mkDefault "http://${cfg.host}:${toString cfg.port}";

    systemd.services.emily-mlflow = {
      description = "Emily: MLflow tracking server";
      wantedBy = [ "multi-user.target" ];
      after = [
        "postgresql.service"
      ]
      ++ lib.optional (config.systemd.services ? postgresql-setup) "postgresql-setup.service"
      ++ lib.optional (ownership.sql != null) "emily-mlflow-db-owner.service";
      requires = [ "postgresql.service" ];
      environment = {
        # The job runner executes arbitrary code submitted over HTTP; the server only tracks.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION = "false";
        HOME = "/var/lib/emily/mlflow";
      };
      serviceConfig = elib.systemd.hardened // {
        User = cfg.user;
        Group = cfg.user;
        StateDirectory = "emily/mlflow";
        ReadWritePaths = [ cfg.artifactsDir ];
        Restart = "on-failure";
        RestartSec = 5;
        ExecStart = lib.escapeShellArgs [
          (lib.getExe' emily.package "mlflow")
          "server"
          "--backend-store-uri"
          backendStore
          "--artifacts-destination"
          cfg.artifactsDir
          "--serve-artifacts"
          "--host"
          cfg.host
          "--port"
          (toString cfg.port)
          "--workers"
          (toString cfg.workers)
        ];
      };
    };

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;
  };
}
