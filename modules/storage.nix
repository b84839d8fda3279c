# ZFS datasets for Emily, one per access pattern, with the properties nix/lib/zfs.nix derives
# (recordsize/compression/logbias). A oneshot creates missing datasets and re-applies the
# properties on every boot, so changing the layout here changes the pool.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.storage;
  inherit (lib) mkOption mkEnableOption types;
  datasetType = types.submodule {
    options = {
      mountpoint = mkOption { type = types.path; };
      properties = mkOption { type = types.attrsOf types.str; };
    };
  };
  zfs = config.boot.zfs.package or pkgs.zfs;
  ds = name: "${cfg.pool}/emily/${name}";
in
{
  imports = [ ./common.nix ];

  options.services.emily.storage = {
    enable = mkEnableOption "the ZFS dataset layout for Emily's data";

    pool = mkOption {
      type = types.str;
      example = "tank";
      description = "Existing ZFS pool the datasets are created in.";
    };

    datasets = mkOption {
      type = types.attrsOf datasetType;
      default = elib.zfs.layout {
        inherit (cfg) pool;
        inherit (emily.hardware) storage;
      };
      defaultText = lib.literalExpression "(import ./nix/lib).zfs.layout { inherit pool; storage = hardware.storage; }";
      description = "Datasets by full name, with mountpoint and ZFS properties.";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = emily.hardware.zfs;
            message = "services.emily.storage.enable puts the data on ZFS: also set services.emily.hardware.zfs = true so PostgreSQL is tuned for copy-on-write (full_page_writes = off).";
          }
        ];

        boot.supportedFilesystems = [ "zfs" ];
        services.zfs.autoScrub.enable = lib.mkDefault true;

        systemd.services.emily-zfs-datasets = {
          description = "Emily: create ZFS datasets and apply their properties";
          wantedBy = [ "multi-user.target" ];
          after = [ "zfs-import.target" "zfs-mount.service" ];
          before = [
            "postgresql.service"
            "emily-mlflow.service"
            "emily-mlops-checkout.service"
            "emily-inference.service"
            "redis-emily.service"
          ];
          path = [ zfs ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
          };
          script = lib.concatStrings (
            lib.mapAttrsToList (name: d: ''
              if ! zfs list -H -o name ${lib.escapeShellArg name} >/dev/null 2>&1; then
                zfs create -p ${lib.escapeShellArgs (elib.zfs.createArgs d)} ${lib.escapeShellArg name}
              else
                zfs set ${lib.escapeShellArgs (lib.mapAttrsToList (k: v: "${k}=${v}") d.properties)} ${lib.escapeShellArg name}
              fi
            '') cfg.datasets
          );
        };
      }

      (lib.mkIf (emily.memory.enable or false) {
        # WAL on its own dataset (logbias=latency) next to the data (logbias=throughput).
        services.postgresql.initdbArgs = [ "--waldir=${cfg.datasets.${ds "postgres-wal"}.mountpoint}/wal" ];
        systemd.tmpfiles.rules = [ "d ${cfg.datasets.${ds "postgres-wal"}.mountpoint} 0700 postgres postgres -" ];
        services.emily.memory.snapshots.datasets = lib.mkDefault [
          (ds "postgres")
          (ds "postgres-wal")
        ];
        services.emily.memory.backup.directory = lib.mkDefault cfg.datasets.${ds "backups"}.mountpoint;
        systemd.services.postgresql = {
          requires = [ "emily-zfs-datasets.service" ];
          serviceConfig.ReadWritePaths = [ cfg.datasets.${ds "postgres-wal"}.mountpoint ];
        };
      })

      (lib.mkIf (emily.mlops.enable or false) {
        services.emily.mlops.artifactsDir = lib.mkDefault cfg.datasets.${ds "mlflow-artifacts"}.mountpoint;
        services.emily.mlops.pipeline.cacheDir = lib.mkDefault cfg.datasets.${ds "dvc-cache"}.mountpoint;
        services.emily.mlops.pipeline.remote.directory = lib.mkDefault cfg.datasets.${ds "dvc-remote"}.mountpoint;
        systemd.services.emily-mlflow.requires = [ "emily-zfs-datasets.service" ];
        systemd.services.emily-mlops-checkout.requires = lib.mkIf emily.mlops.pipeline.enable [ "emily-zfs-datasets.service" ];
      })
    ]
  );
}
