# The model lifecycle: the MLflow tracking server (runs, model registry and prompt registry in
# PostgreSQL, artifacts on disk: the ZFS `mlflow-artifacts` dataset), the DVC pipeline (a
# writable checkout of pipeline/, its cache and remote on ZFS datasets or the remote on S3/MinIO)
# with `emily mlops watch` on a timer, and `emily mlops monitor` on a timer (alerts as structured
# JSON log events in the journal). Everything runs from the mlflow/dvc that python/uv.lock pins.
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
  pipe = cfg.pipeline;
  inherit (lib) mkOption mkEnableOption types;
  emilyExe = lib.getExe emily.package;
  # Peer auth over the socket: the mlflow system user is the mlflow role, no password exists.
  backendStore = "postgresql+psycopg://${cfg.user}@/${cfg.database}?host=/run/postgresql";
  ownership = elib.postgres.dbOwnership {
    inherit (cfg) database;
    owner = cfg.user;
  };
  pgUnits =
    [ "postgresql.service" ]
    ++ lib.optional (config.systemd.services ? postgresql-setup) "postgresql-setup.service";
  serverHome = "/var/lib/emily/mlflow";
  auth = cfg.auth.adminPasswordFile != null;
  # MLflow's basic-auth app: users in SQLite beside the server, nothing allowed by default. No
  # secret in it: the admin password comes from a credential (MLFLOW_AUTH_ADMIN_PASSWORD).
  authIni = pkgs.writeText "mlflow-basic-auth.ini" ''
    [mlflow]
    default_permission = NO_PERMISSIONS
    database_uri = sqlite:///${serverHome}/basic_auth.db
    admin_username = ${cfg.auth.adminUser}
    authorization_function = mlflow.server.auth:authenticate_request_basic_auth
    grant_default_workspace_access = false
    auth_cache_ttl_seconds = 60
  '';

  # What DVC needs of the repository (nix/lib/checkout.nix): its config, pipeline/ (dvc.yaml,
  # dvc.lock, params, data/extra; never the DVC-tracked outputs) and python/src (the stages' deps).
  repoRoot = ../.;
  defaultSource = builtins.path {
    name = "emily-pipeline-source";
    path = repoRoot;
    filter = elib.checkout.filter repoRoot;
  };
  # The checkout's DVC config: no git (the checkout is a copy), the cache on its dataset.
  dvcConfig = pkgs.writeText "emily-dvc-config" ''
    [core]
        analytics = false
        no_scm = true
    [cache]
        dir = ${pipe.cacheDir}
  '';
  s3 = pipe.remote.type == "s3";
  remoteUrl = if s3 then pipe.remote.s3.url else toString pipe.remote.directory;

  # A oneshot of the lifecycle: the app user (the least-privilege database role through peer
  # auth), its own state directory, the settings and credentials every Emily unit gets.
  lifecycleUnit =
    {
      name,
      description,
      after ? [ ],
      requires ? [ ],
      serviceConfig,
    }:
    {
      inherit description requires;
      after =
        pgUnits
        ++ [ "emily-mlflow.service" ]
        ++ lib.optional (emily.memory.enable or false) "emily-memory-migrate.service"
        ++ lib.optional (emily.features.enable or false) "emily-features-apply.service"
        ++ after;
      wants = [ "emily-mlflow.service" ];
      environment =
        emily.environment
        // {
          EMILY_STATE_DIR = "/var/lib/emily/${name}";
          EMILY_CACHE_DIR = "/var/cache/emily/${name}";
          HOME = "/var/lib/emily/${name}";
        }
        // lib.optionalAttrs s3 (
          { AWS_SHARED_CREDENTIALS_FILE = "%d/dvc-s3-credentials"; }
          // lib.optionalAttrs (pipe.remote.s3.endpoint != null) { AWS_ENDPOINT_URL_S3 = pipe.remote.s3.endpoint; }
        );
      serviceConfig =
        elib.systemd.hardened
        // {
          Type = "oneshot";
          User = emily.appUser;
          Group = emily.group;
          StateDirectory = "emily/${name}";
          CacheDirectory = "emily/${name}";
          LoadCredential =
            emily.loadCredential
            ++ lib.optional (
              s3 && pipe.remote.s3.credentialsFile != null
            ) "dvc-s3-credentials:${pipe.remote.s3.credentialsFile}";
          # Batch work: it yields to the agent loop and PostgreSQL.
          Nice = 10;
          IOSchedulingClass = "idle";
        }
        // serviceConfig;
    };
in
{
  imports = [ ./common.nix ];

  options.services.emily.mlops = {
    enable = mkEnableOption "the model lifecycle: MLflow on PostgreSQL, the DVC pipeline and its watch and monitor timers";

    user = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_]{0,31}";
      default = "mlflow";
      description = "System user and PostgreSQL role of the tracking server.";
    };

    database = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_]{0,62}";
      default = "mlflow";
      description = ''
        PostgreSQL database of the backend store (runs, traces), of the model registry and of
        the prompt registry, owned by `user` (through `ensureDBOwnership` when the names are
        equal, else by the oneshot `emily-mlflow-db-owner`). Rendered to `mlflow.database`.
      '';
    };

    artifactsDir = mkOption {
      type = types.path;
      default = "/var/lib/emily/mlflow-artifacts";
      description = "Artifact store (served through the tracking server, --artifacts-destination); the `mlflow-artifacts` dataset with services.emily.storage.";
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Listen address.";
    };

    port = mkOption {
      type = types.port;
      default = 5000;
      description = "Listen port; with `host`, rendered to `mlflow.tracking_uri`.";
    };

    workers = mkOption {
      type = types.ints.between 1 16;
      default = 2;
      description = "Server workers (`mlflow.workers`).";
    };

    auth = {
      adminPasswordFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/agenix/mlflow-admin-password";
        description = ''
          File with the password of MLflow's admin user. Set: the server runs MLflow's
          basic-auth app (nothing is readable or writable without a user), the password reaches
          it and the Emily units (`mlflow.password`) through LoadCredential only. Null: no
          authentication, for a server on loopback only.
        '';
      };
      adminUser = mkOption {
        type = types.str;
        default = "emily-admin";
        description = "MLflow admin user (`mlflow.username` of the Emily units).";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the MLflow port.";
    };

    pipeline = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "The DVC pipeline checkout and `emily mlops watch` on a timer.";
      };
      source = mkOption {
        type = types.path;
        default = defaultSource;
        defaultText = lib.literalExpression "this repository's .dvc/config, pipeline/ (without DVC outputs) and python/src";
        description = "What the checkout is copied from (again whenever it changes; DVC outputs and its run cache are kept).";
      };
      directory = mkOption {
        type = types.path;
        default = "/var/lib/emily/pipeline";
        description = "The writable checkout; `mlops.pipeline_dir` is its pipeline/.";
      };
      cacheDir = mkOption {
        type = types.path;
        default = "/var/lib/emily/dvc-cache";
        description = "DVC cache of the checkout (the `dvc-cache` dataset with services.emily.storage).";
      };
      remote = {
        type = mkOption {
          type = types.enum [
            "directory"
            "s3"
          ];
          default = "directory";
          description = "Where `dvc push` stores the pipeline's data and models: a local directory (a ZFS dataset) or S3/MinIO.";
        };
        directory = mkOption {
          type = types.path;
          default = "/var/lib/emily/dvc-remote";
          description = "The directory remote (the `dvc-remote` dataset with services.emily.storage).";
        };
        s3 = {
          url = mkOption {
            type = types.nullOr (types.strMatching "s3://.+");
            default = null;
            example = "s3://emily-dvc/appraisal";
            description = "Bucket and prefix of the S3 remote.";
          };
          endpoint = mkOption {
            type = types.nullOr types.str;
            default = null;
            example = "http://127.0.0.1:9000";
            description = "S3 endpoint of a MinIO or other S3-compatible server (AWS_ENDPOINT_URL_S3); null: AWS.";
          };
          credentialsFile = mkOption {
            type = types.nullOr types.path;
            default = null;
            example = "/run/agenix/dvc-s3-credentials";
            description = "AWS shared-credentials file (`[default]` aws_access_key_id / aws_secret_access_key), delivered with LoadCredential; null: instance credentials.";
          };
        };
      };
      watch.schedule = mkOption {
        type = types.str;
        default = "hourly";
        description = "systemd OnCalendar of `emily mlops watch` (one pass: retrains when drift says so).";
      };
      timeout = mkOption {
        type = types.str;
        default = "3h";
        description = "TimeoutStartSec of one watch pass (a retraining included).";
      };
    };

    monitor = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "`emily mlops monitor --json` on a timer: alerts as structured log events in the journal.";
      };
      schedule = mkOption {
        type = types.str;
        default = "*:0/15";
        description = "systemd OnCalendar of the monitoring pass.";
      };
      metricsDir = mkOption {
        type = types.path;
        readOnly = true;
        default = "/var/lib/emily/mlops-monitor/metrics";
        description = ''
          Where the pass writes its Prometheus gauges (`monitor.prom`: the default
          `<state_dir>/metrics` of its unit, i.e. `mlops.monitor_metrics_path` left unset),
          node_exporter's textfile collector directory with
          services.emily.observability.prometheus.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !(emily.memory.enable or false) || emily.memory.database != cfg.database;
        message = "services.emily.mlops.database (${cfg.database}) is also services.emily.memory.database: a database has one owner (${emily.user} for memory, ${cfg.user} for MLflow); give MLflow its own.";
      }
      {
        assertion = !pipe.enable || pipe.remote.type != "s3" || pipe.remote.s3.url != null;
        message = "services.emily.mlops.pipeline.remote.type = \"s3\" needs services.emily.mlops.pipeline.remote.s3.url (s3://bucket/prefix).";
      }
      {
        assertion = auth || elib.net.isLoopback cfg.host;
        message = "services.emily.mlops.host (${cfg.host}) is not loopback: set services.emily.mlops.auth.adminPasswordFile so the server authenticates its clients.";
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

    systemd.tmpfiles.rules =
      [ "d ${cfg.artifactsDir} 0750 ${cfg.user} ${emily.group} -" ]
      ++ lib.optionals pipe.enable (
        [
          "d ${pipe.directory} 0750 ${emily.appUser} ${emily.group} -"
          "d ${pipe.cacheDir} 0750 ${emily.appUser} ${emily.group} -"
        ]
        ++ lib.optional (!s3) "d ${pipe.remote.directory} 0750 ${emily.appUser} ${emily.group} -"
      );

    services.emily.settings.mlflow = {
      tracking_uri = lib.mkDefault "http://${cfg.host}:${toString cfg.port}";
      database = lib.mkDefault cfg.database;
      workers = lib.mkDefault cfg.workers;
      username = lib.mkIf auth (lib.mkDefault cfg.auth.adminUser);
    };
    services.emily.settings.mlops = lib.mkMerge [
      (lib.mkIf pipe.enable {
        pipeline_dir = lib.mkDefault "${toString pipe.directory}/pipeline";
        dvc_remote_url = lib.mkDefault remoteUrl;
      })
    ];
    services.emily.secrets = lib.mkIf auth { "mlflow.password" = cfg.auth.adminPasswordFile; };

    systemd.services.emily-mlflow = {
      description = "Emily: MLflow tracking server, model and prompt registry";
      wantedBy = [ "multi-user.target" ];
      after = pgUnits ++ lib.optional (ownership.sql != null) "emily-mlflow-db-owner.service";
      requires = [ "postgresql.service" ];
      environment = {
        # The job runner executes arbitrary code submitted over HTTP; the server only tracks.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION = "false";
        MLFLOW_DISABLE_TELEMETRY = "true";
        DO_NOT_TRACK = "true";
        HOME = serverHome;
      }
      // lib.optionalAttrs auth { MLFLOW_AUTH_CONFIG_PATH = "${authIni}"; };
      # The password and the Flask session key are exported here, from the credential and the
      # state directory: never on the command line (`ps`), never in the unit or the store.
      script =
        lib.optionalString auth ''
          MLFLOW_AUTH_ADMIN_PASSWORD=$(< "$CREDENTIALS_DIRECTORY/mlflow-admin-password")
          [ -s ${serverHome}/flask-secret ] || head -c 32 /dev/urandom | od -A n -t x1 | tr -d ' \n' > ${serverHome}/flask-secret
          MLFLOW_FLASK_SERVER_SECRET_KEY=$(< ${serverHome}/flask-secret)
          export MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
        ''
        + "exec "
        + lib.escapeShellArgs (
          [
            (lib.getExe' emily.package "mlflow")
            "server"
          ]
          ++ lib.optionals auth [
            "--app-name"
            "basic-auth"
          ]
          ++ [
            "--backend-store-uri"
            backendStore
            "--registry-store-uri"
            backendStore
            "--artifacts-destination"
            (toString cfg.artifactsDir)
            "--serve-artifacts"
            "--host"
            cfg.host
            "--port"
            (toString cfg.port)
            "--workers"
            (toString cfg.workers)
          ]
        );
      serviceConfig = elib.systemd.hardened // {
        User = cfg.user;
        Group = cfg.user;
        StateDirectory = "emily/mlflow";
        ReadWritePaths = [ cfg.artifactsDir ];
        LoadCredential = lib.optional auth "mlflow-admin-password:${cfg.auth.adminPasswordFile}";
        Restart = "on-failure";
        RestartSec = 5;
        # The first start migrates the schema; that takes minutes on HDDs.
        TimeoutStartSec = "10min";
      };
    };

    # The checkout: copied from `source` when that changes (a stamp holds the store path), so
    # DVC's outputs, dvc.lock updates and run cache survive restarts and upgrades alike.
    systemd.services.emily-mlops-checkout = lib.mkIf pipe.enable {
      description = "Emily: DVC pipeline checkout";
      wantedBy = [ "multi-user.target" ];
      path = [ pkgs.coreutils ];
      script = ''
        dir=${pipe.directory}
        if [ "$(cat "$dir/.source" 2>/dev/null)" != ${pipe.source} ]; then
          cp -rT --no-preserve=mode,ownership ${pipe.source} "$dir"
          chmod -R u+w "$dir"
          cp --no-preserve=mode ${dvcConfig} "$dir/.dvc/config"
          echo ${pipe.source} > "$dir/.source"
        fi
      '';
      serviceConfig = elib.systemd.hardened // {
        Type = "oneshot";
        RemainAfterExit = true;
        User = emily.appUser;
        Group = emily.group;
        ReadWritePaths = [ pipe.directory ];
        UMask = "0027";
      };
    };

    systemd.services.emily-mlops-watch = lib.mkIf pipe.enable (lifecycleUnit {
      name = "mlops-watch";
      description = "Emily: drift-triggered retraining (one pass of the DVC pipeline)";
      after = [ "emily-mlops-checkout.service" ];
      requires = [ "emily-mlops-checkout.service" ];
      serviceConfig = {
        ExecStart = "${emilyExe} mlops watch";
        ReadWritePaths = [
          pipe.directory
          pipe.cacheDir
        ]
        ++ lib.optional (!s3) pipe.remote.directory;
        TimeoutStartSec = pipe.timeout;
      };
    });
    systemd.timers.emily-mlops-watch = lib.mkIf pipe.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = pipe.watch.schedule;
        Persistent = true;
        RandomizedDelaySec = "10m";
      };
    };

    systemd.services.emily-mlops-monitor = lib.mkIf cfg.monitor.enable (lifecycleUnit {
      name = "mlops-monitor";
      description = "Emily: model and feature monitoring pass (alerts to the journal)";
      serviceConfig = {
        ExecStart = "${emilyExe} mlops monitor --json";
        SyslogIdentifier = "emily-mlops-monitor";
        # The gauges (state dir/metrics/monitor.prom) must be readable by node_exporter.
        StateDirectoryMode = "0755";
        UMask = "0022";
        Nice = 5;
        IOSchedulingClass = "best-effort";
        TimeoutStartSec = "15min";
      };
    });
    systemd.timers.emily-mlops-monitor = lib.mkIf cfg.monitor.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.monitor.schedule;
        Persistent = true;
      };
    };

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;
  };
}
