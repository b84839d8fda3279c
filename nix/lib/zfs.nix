# ZFS dataset layout for the host: one dataset per access pattern, so each gets the recordsize,
# compression and logbias that suits it.
let
  common = {
    atime = "off";
    xattr = "sa";
  };
in
rec {
  # storage "hdd" on RAIDZ: 8K records would be 2 data + 2 parity sectors (ashift=12, RAIDZ2),
  # i.e. 50% parity overhead, so PG data uses 16K there and 8K (= the PG page) on SSD mirrors.
  pgDataRecordsize = storage: if storage == "hdd" then "16K" else "8K";

  layout =
    {
      pool,
      storage ? "hdd",
      root ? "emily"
    }:
    let
      ds = name: "${pool}/${root}/${name}";
    in
    {
      ${ds "postgres"} = {
        mountpoint = "/var/lib/postgresql";
        properties = common // {
          recordsize = pgDataRecordsize storage;
          compression = "lz4";
          # Data pages are written by checkpoints in bulk: skip the ZIL double write.
          logbias = "throughput";
          redundant_metadata = "most";
        };
      };
      ${ds "postgres-wal"} = {
        mountpoint = "/var/lib/postgresql-wal";
        properties = common // {
          # WAL is appended sequentially in 16 MB segments and read back whole on recovery.
          recordsize = "128K";
          compression = "lz4";
          # Commits wait on WAL fsync: keep it on the low-latency ZIL path.
          logbias = "latency";
        };
      };
      ${ds "backups"} = {
        mountpoint = "/var/backup/emily";
        properties = common // {
          recordsize = "1M";
          compression = "zstd";
        };
      };
      ${ds "mlflow-artifacts"} = {
        mountpoint = "/var/lib/emily/mlflow-artifacts";
        properties = common // {
          recordsize = "1M";
          compression = "zstd";
        };
      };
      ${ds "dvc-cache"} = {
        mountpoint = "/var/lib/emily/dvc-cache";
        properties = common // {
          recordsize = "1M";
          compression = "zstd";
        };
      };
      # The DVC remote (`dvc push`): content-addressed files written once, read on `dvc pull`.
      ${ds "dvc-remote"} = {
        mountpoint = "/var/lib/emily/dvc-remote";
        properties = common // {
          recordsize = "1M";
          compression = "zstd";
        };
      };
      ${ds "models"} = {
        mountpoint = "/var/lib/emily/models";
        properties = common // {
          recordsize = "1M";
          # Quantised weights barely compress; lz4 gives up early on them at no cost.
          compression = "lz4";
        };
      };
      ${ds "redis"} = {
        mountpoint = "/var/lib/redis-emily";
        properties = common // {
          recordsize = "128K";
          compression = "lz4";
        };
      };
    };

  # `zfs create` arguments for one dataset, e.g. [ "-o" "recordsize=16K" ... ].
  createArgs =
    dataset:
    builtins.concatLists (
      map (k: [
        "-o"
        "${k}=${dataset.properties.${k}}"
      ]) (builtins.attrNames dataset.properties)
    )
    ++ [
      "-o"
      "mountpoint=${dataset.mountpoint}"
    ];
}
