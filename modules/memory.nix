# Episodic memory: PostgreSQL + pgvector tuned from the host's hardware facts, the schema
# migration, scheduled maintenance, pg_dump backups and ZFS snapshots.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.memory;
  inherit (lib) mkOption mkEnableOption types;
  hw = emily.hardware;
  tuned = elib.postgres.tune {
    inherit (hw) ramMB cores storage zfs;
    maxConnections = cfg.maxConnections;
  };
  # Peer authentication over the local socket: the DSNs carry no password, so the files below
  # are safe in the store; remote databases override them with real secret files.
  socketDsn = role: "postgresql:///${cfg.database}?host=/run/postgresql&user=${role}";
  unit = name: extra: after: {
    after = [ "postgresql.service" ] ++ lib.optional (config.systemd.services ? postgresql-setup) "postgresql-setup.service" ++ after;
    requires = [ "postgresql.service" ];
    environment = emily.environment // {
      EMILY_STATE_DIR = "/var/lib/emily/${name}";
      EMILY_CACHE_DIR = "/var/cache/emily/${name}";
    };
    serviceConfig =
      elib.systemd.hardened
      // {
        Type = "oneshot";
        User = emily.user;
        Group = emily.group;
        StateDirectory = "emily/${name}";
        CacheDirectory = "emily/${name}";
        LoadCredential = emily.loadCredential;
      }
      // extra;
  };
in
{
  imports = [ ./common.nix ];

  options.services.emily.memory = {
    enable = mkEnableOption "Emily's episodic memory on PostgreSQL + pgvector";

    postgresqlPackage = mkOption {
      type = types.package;
      default = pkgs.postgresql_17;
      defaultText = lib.literalExpression "pkgs.postgresql_17";
      description = "PostgreSQL server; pgvector, pg_stat_statements and pg_prewarm are added to it.";
    };

    database = mkOption {
      type = types.str;
      default = "emily";
      description = "Database name; owned by the role services.emily.user.";
    };

    appRole = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_]{0,62}";
      default = "emily_app";
      description = "Least-privilege role the services connect as (DML only; granted by `emily memory migrate`).";
    };

    maxConnections = mkOption {
      type = types.ints.between 10 5000;
      default = 100;
      description = "max_connections; work_mem is derived from it.";
    };

    postgresqlSettings = mkOption {
      type = types.attrsOf (types.oneOf [ types.bool types.int types.float types.str ]);
      default = { };
      example = {
        maintenance_work_mem = "16GB";
      };
      description = "Overrides on top of the settings computed from services.emily.hardware.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Listen on TCP and open the PostgreSQL port (default: local socket only).";
    };

    maintenance = {
      schedule = mkOption {
        type = types.str;
        default = "*-*-* 03:30:00";
        description = "systemd OnCalendar of `emily memory maintain` (partitions ahead, retention, ANALYZE).";
      };
      reindex = mkOption {
        type = types.bool;
        default = false;
        description = "Pass --reindex (rebuilds HNSW indexes concurrently; heavy on HDD).";
      };
    };

    backup = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Nightly `emily memory backup` (pg_dump custom format).";
      };
      directory = mkOption {
        type = types.str;
        default = "/var/backup/emily";
        description = "Where dumps are written (the `backups` ZFS dataset in services.emily.storage).";
      };
      schedule = mkOption {
        type = types.str;
        default = "*-*-* 02:15:00";
        description = "systemd OnCalendar of the backup.";
      };
      keepDays = mkOption {
        type = types.ints.positive;
        default = 14;
        description = "Dumps older than this are deleted after a successful backup.";
      };
    };

    snapshots = {
      enable = mkOption {
        type = types.bool;
        default = hw.zfs;
        defaultText = lib.literalExpression "config.services.emily.hardware.zfs";
        description = "Hourly atomic ZFS snapshots of the PostgreSQL data and WAL datasets.";
      };
      datasets = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "tank/emily/postgres"
          "tank/emily/postgres-wal"
        ];
        description = "Datasets snapshotted together (one `zfs snapshot` call, so data and WAL are consistent).";
      };
      schedule = mkOption {
        type = types.str;
        default = "hourly";
        description = "systemd OnCalendar of the snapshots.";
      };
      keep = mkOption {
        type = types.ints.positive;
        default = 48;
        description = "Snapshots kept per dataset.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !cfg.snapshots.enable || cfg.snapshots.datasets != [ ];
        message = "services.emily.memory.snapshots.enable needs services.emily.memory.snapshots.datasets (e.g. [ \"tank/emily/postgres\" \"tank/emily/postgres-wal\" ]), or set services.emily.storage.enable which fills them in.";
      }
      {
        assertion = (emily.settings.database.app_role or cfg.appRole) == cfg.appRole;
        message = "services.emily.settings.database.app_role (${emily.settings.database.app_role or ""}) differs from services.emily.memory.appRole (${cfg.appRole}); set only services.emily.memory.appRole.";
      }
    ];

    services.emily.settings.database.app_role = cfg.appRole;
    # pg_dump/pg_restore must match the server's major version.
    services.emily.settings.stack.postgres_bin_dir = lib.mkDefault "${cfg.postgresqlPackage}/bin";
    services.emily.secrets = {
      "database.dsn" = lib.mkDefault (toString (pkgs.writeText "emily-app-dsn" (socketDsn cfg.appRole)));
      "database.admin_dsn" = lib.mkDefault (toString (pkgs.writeText "emily-admin-dsn" (socketDsn emily.user)));
    };

    services.postgresql = {
      enable = true;
      package = cfg.postgresqlPackage;
      extensions = ps: [ ps.pgvector ];
      enableTCPIP = cfg.openFirewall;
      settings =
        tuned
        // {
          shared_preload_libraries = "pg_stat_statements,pg_prewarm";
          "pg_stat_statements.track" = "top";
          # Re-warms shared_buffers (the HNSW graphs) after a restart instead of cold HDD reads.
          "pg_prewarm.autoprewarm" = true;
          jit = false;
          log_min_duration_statement = 1000;
        }
        // cfg.postgresqlSettings;
      ensureDatabases = [ cfg.database ];
      ensureUsers = [
        {
          name = emily.user;
          ensureDBOwnership = true;
        }
        {
          name = cfg.appRole;
          ensureClauses.login = true;
        }
      ];
      # System user -> role: only `emily` may act as owner, only `emily-app` as the app role.
      identMap = ''
        emily_peer ${emily.user} ${emily.user}
        emily_peer ${emily.appUser} ${cfg.appRole}
        emily_peer root ${emily.user}
      '';
      authentication = lib.mkBefore ''
        local ${cfg.database} ${emily.user},${cfg.appRole} peer map=emily_peer
      '';
    };

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall config.services.postgresql.settings.port;

    systemd.services.emily-memory-migrate = unit "migrate" {
      RemainAfterExit = true;
      ExecStart = "${emily.package}/bin/emily memory migrate";
    } [ ] // {
      description = "Emily: create/upgrade the episodic memory schema";
      wantedBy = [ "multi-user.target" ];
    };

    systemd.services.emily-memory-maintain = unit "maintain" {
      ExecStart = "${emily.package}/bin/emily memory maintain" + lib.optionalString cfg.maintenance.reindex " --reindex";
    } [ "emily-memory-migrate.service" ] // {
      description = "Emily: partitions ahead, retention, ANALYZE";
    };
    systemd.timers.emily-memory-maintain = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.maintenance.schedule;
        Persistent = true;
        RandomizedDelaySec = "10m";
      };
    };

    systemd.services.emily-memory-backup = lib.mkIf cfg.backup.enable (
      unit "backup" {
        ReadWritePaths = [ cfg.backup.directory ];
      } [ "emily-memory-migrate.service" ]
      // {
        description = "Emily: pg_dump of the episodic memory";
        path = [ pkgs.findutils cfg.postgresqlPackage ];
        script = ''
          out=${cfg.backup.directory}/emily-$(date -u +%Y%m%dT%H%M%SZ).dump
          ${emily.package}/bin/emily memory backup "$out"
          find ${cfg.backup.directory} -name 'emily-*.dump' -mtime +${toString cfg.backup.keepDays} -delete
        '';
      }
    );
    systemd.timers.emily-memory-backup = lib.mkIf cfg.backup.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.backup.schedule;
        Persistent = true;
      };
    };
    systemd.tmpfiles.rules = lib.optional cfg.backup.enable "d ${cfg.backup.directory} 0750 ${emily.user} ${emily.group} -";

    # Runs as root (zfs needs it) but touches nothing but snapshots.
    systemd.services.emily-zfs-snapshot = lib.mkIf cfg.snapshots.enable {
      description = "Emily: atomic ZFS snapshot of PostgreSQL data + WAL";
      path = [ config.boot.zfs.package or pkgs.zfs ];
      serviceConfig = {
        Type = "oneshot";
        PrivateTmp = true;
        NoNewPrivileges = true;
        ProtectHome = true;
      };
      script = ''
        tag=emily-$(date -u +%Y%m%dT%H%M%SZ)
        zfs snapshot ${lib.concatMapStringsSep " " (d: "${d}@$tag") cfg.snapshots.datasets}
        for ds in ${lib.concatStringsSep " " cfg.snapshots.datasets}; do
          zfs list -H -t snapshot -o name -s creation -d 1 "$ds" | grep '@emily-' \
            | head -n -${toString cfg.snapshots.keep} | xargs -r -n 1 zfs destroy
        done
      '';
    };
    systemd.timers.emily-zfs-snapshot = lib.mkIf cfg.snapshots.enable {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.snapshots.schedule;
        Persistent = true;
      };
    };
  };
}
