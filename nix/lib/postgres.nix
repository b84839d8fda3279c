# PostgreSQL tuning arithmetic from the host's hardware facts (PGTune's rules, adjusted for
# pgvector HNSW builds and for ZFS). All sizes are computed in MB/kB integers; the renderer
# adds units so services.postgresql.settings gets strings PostgreSQL parses.
let
  s = import ./strings.nix;
  inherit (s) min max;
  mb = n: "${toString n}MB";
  kb = n: "${toString n}kB";
in
rec {
  # ramMB: physical memory; cores: CPU threads; storage: "hdd" | "ssd"; zfs: data dir on ZFS.
  tune =
    {
      ramMB,
      cores,
      storage ? "ssd",
      zfs ? false,
      maxConnections ? 100
    }:
    assert builtins.elem storage [
      "hdd"
      "ssd"
    ]
      || throw "storage must be \"hdd\" or \"ssd\", got ${storage}";
    assert ramMB >= 1024 || throw "ramMB must be at least 1024, got ${toString ramMB}";
    assert cores >= 1 || throw "cores must be at least 1";
    let
      sharedBuffersMB = ramMB / 4;
      effectiveCacheMB = ramMB * 3 / 4;
      # An HNSW build is only fast while the whole graph fits in maintenance_work_mem; 1/16 of
      # RAM (capped at 16 GB) holds a few million 384-d halfvec nodes without starving the rest.
      maintenanceMB = min 16384 (max 64 (ramMB / 16));
      gatherWorkers = max 1 (min 4 (cores / 4));
      # pgvector builds HNSW in parallel; cores/4 (max 7 + the leader) keeps the API responsive.
      maintenanceWorkers = max 1 (min 7 (cores / 4));
      # PGTune: what is left after shared_buffers, split over 3 sorts per connection and workers.
      workMemKB = max 4096 ((ramMB - sharedBuffersMB) * 1024 / (maxConnections * 3) / gatherWorkers);
      hdd = storage == "hdd";
    in
    {
      max_connections = maxConnections;
      shared_buffers = mb sharedBuffersMB;
      effective_cache_size = mb effectiveCacheMB;
      maintenance_work_mem = mb maintenanceMB;
      work_mem = kb workMemKB;
      huge_pages = "try";
      wal_buffers = "16MB";
      min_wal_size = if hdd then "2GB" else "1GB";
      max_wal_size = if hdd then "8GB" else "4GB";
      checkpoint_completion_target = 0.9;
      # Seeks dominate on spinning disks; SSDs make random reads nearly as cheap as sequential.
      random_page_cost = if hdd then 4.0 else 1.1;
      effective_io_concurrency = if hdd then 2 else 200;
      max_worker_processes = max 8 cores;
      max_parallel_workers = cores;
      max_parallel_workers_per_gather = gatherWorkers;
      max_parallel_maintenance_workers = maintenanceWorkers;
    }
    // (
      if zfs then
        {
          # ZFS is copy-on-write: a page is never torn, so full-page images only bloat WAL.
          full_page_writes = false;
          # Zero-filling/recycling WAL segments buys nothing on COW and costs a write each.
          wal_init_zero = false;
          wal_recycle = false;
        }
      else
        { }
    );

  # Who makes `owner` the owner of `database`. Upstream's `ensureDBOwnership` only grants a role
  # the database of its own name (and asserts that one exists), so it is used only then; other
  # pairs get an `ALTER DATABASE` (names are checked identifiers, quoted anyway).
  dbOwnership =
    { database, owner }:
    if database == owner then
      {
        ensureDBOwnership = true;
        sql = null;
      }
    else
      {
        ensureDBOwnership = false;
        sql = "ALTER DATABASE \"${database}\" OWNER TO \"${owner}\";";
      };

  # The oneshot that runs dbOwnership's SQL as the postgres superuser once postgresql-setup
  # (ensureDatabases/ensureUsers) is done, before the units that need the ownership.
  ownerUnit =
    {
      database,
      owner,
      sql,
      psql,
      hardened,
      before ? [ ],
    }:
    {
      description = "Emily: make ${owner} the owner of database ${database}";
      wantedBy = [ "multi-user.target" ];
      inherit before;
      requiredBy = before;
      after = [
        "postgresql.service"
        "postgresql-setup.service"
      ];
      requires = [ "postgresql.service" ];
      serviceConfig = hardened // {
        Type = "oneshot";
        RemainAfterExit = true;
        User = "postgres";
        Group = "postgres";
        # psql writes nothing; the socket is all it needs.
        PrivateNetwork = true;
      };
      script = "${psql} -v ON_ERROR_STOP=1 -d postgres -c '${sql}'";
    };

  # "32768MB" -> 32768; lets tests and assertions compare rendered sizes.
  sizeMB =
    value:
    let
      m = builtins.match "([0-9]+)(kB|MB|GB)" value;
      n = builtins.fromJSON (builtins.elemAt m 0);
      unit = builtins.elemAt m 1;
    in
    if m == null then
      throw "not a PostgreSQL size: ${value}"
    else if unit == "kB" then
      n / 1024
    else if unit == "MB" then
      n
    else
      n * 1024;
}
