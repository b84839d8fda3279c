# Pure-lib tests: nix-instantiate --eval --strict --json nix/lib/tests.nix
# yields { passed; failed; failures; summary = "N passed, N failed"; }.
let
  lib = import ./.;
  inherit (lib)
    version
    gpu
    postgres
    zfs
    env
    k8s
    systemd
    net
    ;
  policy = k8s.zenohTracingPolicy { };
  # What the c220g5 host feeds the tuner: 128 GB, 28 threads, RAIDZ2 on HDD.
  c220g5 = postgres.tune {
    ramMB = 131072;
    cores = 28;
    storage = "hdd";
    zfs = true;
  };
  laptop = postgres.tune {
    ramMB = 16384;
    cores = 8;
    storage = "ssd";
  };
  layout = zfs.layout { pool = "tank"; };
  ssdLayout = zfs.layout {
    pool = "fast";
    storage = "ssd";
  };
  throws = expr: !(builtins.tryEval expr).success;

  cases = {
    # version
    version_numeric_prefix = {
      expr = version.numericParts "5.15.0-generic";
      expected = [ 5 15 0 ];
    };
    version_compare_patch = {
      expr = version.compare "6.1.55" "6.1.9";
      expected = 1;
    };
    version_compare_shorter_equal = {
      expr = version.compare "5.15" "5.15.0";
      expected = 0;
    };
    version_rc_counts_as_release = {
      expr = version.atLeast "5.15-rc1" "5.15";
      expected = true;
    };
    version_rejects_garbage = {
      expr = throws (version.compare "abc" "1.0");
      expected = true;
    };
    cilium_ok_on_6_12 = {
      expr = version.ciliumKernelOk "6.12.41";
      expected = true;
    };
    cilium_ok_on_5_15 = {
      expr = version.ciliumKernelOk "5.15.0";
      expected = true;
    };
    cilium_refuses_5_10 = {
      expr = version.ciliumKernelOk "5.10.240";
      expected = false;
    };
    cilium_refuses_4_19 = {
      expr = version.ciliumKernelOk "4.19.325";
      expected = false;
    };
    cilium_message_names_kernel = {
      expr = builtins.match ".*5\\.10\\.1.*linuxPackages.*" (version.ciliumKernelMessage "5.10.1") != null;
      expected = true;
    };

    # GPU rules
    gpu_parse_dotted = {
      expr = gpu.parseCapability "6.1";
      expected = {
        major = 6;
        minor = 1;
      };
    };
    gpu_parse_sm = {
      expr = gpu.parseCapability "sm_75";
      expected = {
        major = 7;
        minor = 5;
      };
    };
    gpu_parse_float = {
      expr = gpu.smName 8.6;
      expected = "sm_86";
    };
    gpu_parse_rejects = {
      expr = throws (gpu.parseCapability "pascal");
      expected = true;
    };
    gpu_sglang_refused_on_p4 = {
      expr = gpu.backendOk "sglang" "6.1";
      expected = false;
    };
    gpu_sglang_refusal_says_why = {
      expr = builtins.match ".*sm_75.*sm_61.*" (gpu.refusalMessage "sglang" "6.1") != null;
      expected = true;
    };
    gpu_sglang_ok_on_turing = {
      expr = gpu.backendOk "sglang" "7.5";
      expected = true;
    };
    gpu_sglang_ok_on_a100 = {
      expr = gpu.backendOk "sglang" "sm_80";
      expected = true;
    };
    gpu_sglang_refused_without_gpu = {
      expr = gpu.backendOk "sglang" null;
      expected = false;
    };
    gpu_llama_cpp_everywhere = {
      expr = map (gpu.backendOk "llama-cpp") [
        null
        "5.0"
        "6.1"
        "9.0"
      ];
      expected = [
        true
        true
        true
        true
      ];
    };
    gpu_p4_needs_cuda12_driver580 = {
      expr = [
        (gpu.cudaMajor "6.1")
        (gpu.driverPackageName "6.1")
      ];
      expected = [
        12
        "legacy_580"
      ];
    };
    gpu_volta_still_legacy = {
      expr = gpu.needsLegacyStack "7.0";
      expected = true;
    };
    gpu_a100_current_stack = {
      expr = [
        (gpu.cudaMajor "8.0")
        (gpu.driverPackageName "8.0")
      ];
      expected = [
        13
        "production"
      ];
    };
    gpu_cuda_capabilities_format = {
      expr = gpu.cudaCapabilities "sm_61";
      expected = [ "6.1" ];
    };
    gpu_rules_from_python_table = {
      # The JSON the Python side exports is present and read (not the builtin fallback).
      expr = gpu.usesJsonRules;
      expected = true;
    };
    gpu_json_examples_agree = {
      # Every example card in the exported table gets the SGLang verdict the sm_75 rule implies.
      expr =
        let
          examples = (builtins.fromJSON (builtins.readFile ./gpu-rules.json)).examples;
        in
        builtins.all (
          name: gpu.backendOk "sglang" examples.${name} == gpu.capabilityAtLeast examples.${name} "7.5"
        ) (builtins.attrNames examples);
      expected = true;
    };
    gpu_rules_cover_both_backends = {
      expr = builtins.all (b: builtins.elem b gpu.backends) [
        "sglang"
        "llama-cpp"
      ];
      expected = true;
    };

    # Postgres tuning
    pg_shared_buffers_quarter = {
      expr = postgres.sizeMB c220g5.shared_buffers;
      expected = 131072 / 4;
    };
    pg_effective_cache_three_quarters = {
      expr = postgres.sizeMB c220g5.effective_cache_size;
      expected = 131072 * 3 / 4;
    };
    pg_maintenance_for_hnsw = {
      expr = postgres.sizeMB c220g5.maintenance_work_mem;
      expected = 8192;
    };
    pg_maintenance_capped = {
      expr = postgres.sizeMB (postgres.tune {
        ramMB = 1048576;
        cores = 64;
      }).maintenance_work_mem;
      expected = 16384;
    };
    pg_hdd_random_page_cost = {
      expr = c220g5.random_page_cost;
      expected = 4.0;
    };
    pg_ssd_random_page_cost = {
      expr = laptop.random_page_cost;
      expected = 1.1;
    };
    pg_io_concurrency = {
      expr = [
        c220g5.effective_io_concurrency
        laptop.effective_io_concurrency
      ];
      expected = [
        2
        200
      ];
    };
    pg_parallel_maintenance = {
      expr = [
        c220g5.max_parallel_maintenance_workers
        laptop.max_parallel_maintenance_workers
        (postgres.tune {
          ramMB = 2048;
          cores = 1;
        }).max_parallel_maintenance_workers
      ];
      expected = [
        7
        2
        1
      ];
    };
    pg_work_mem_pgtune = {
      # (128 GB - 32 GB) / (100 connections * 3) / 4 gather workers, in kB
      expr = c220g5.work_mem;
      expected = "${toString ((131072 - 32768) * 1024 / 300 / 4)}kB";
    };
    pg_work_mem_floor = {
      expr = (postgres.tune {
        ramMB = 1024;
        cores = 2;
        maxConnections = 500;
      }).work_mem;
      expected = "4096kB";
    };
    pg_zfs_no_full_page_writes = {
      expr = [
        c220g5.full_page_writes
        c220g5.wal_init_zero
        c220g5.wal_recycle
      ];
      expected = [
        false
        false
        false
      ];
    };
    pg_no_zfs_keeps_full_page_writes = {
      expr = laptop ? full_page_writes;
      expected = false;
    };
    pg_rejects_unknown_storage = {
      expr = throws (postgres.tune {
        ramMB = 4096;
        cores = 2;
        storage = "tape";
      }).shared_buffers;
      expected = true;
    };
    pg_size_units = {
      expr = map postgres.sizeMB [
        "2048kB"
        "16MB"
        "8GB"
      ];
      expected = [
        2
        16
        8192
      ];
    };

    pg_owner_same_name_uses_ensure = {
      expr = postgres.dbOwnership {
        database = "mlflow";
        owner = "mlflow";
      };
      expected = {
        ensureDBOwnership = true;
        sql = null;
      };
    };
    pg_owner_other_name_alters = {
      expr = postgres.dbOwnership {
        database = "emily_memory";
        owner = "emily";
      };
      expected = {
        ensureDBOwnership = false;
        sql = ''ALTER DATABASE "emily_memory" OWNER TO "emily";'';
      };
    };
    pg_owner_unit_runs_after_setup = {
      expr =
        let
          u = postgres.ownerUnit {
            database = "d";
            owner = "o";
            sql = "ALTER DATABASE x";
            psql = "/bin/psql";
            hardened = { };
            before = [ "a.service" ];
          };
        in
        [
          u.serviceConfig.User
          (builtins.elem "postgresql-setup.service" u.after)
          u.requiredBy
        ];
      expected = [
        "postgres"
        true
        [ "a.service" ]
      ];
    };

    # ZFS layout
    zfs_pg_data_hdd = {
      expr = layout."tank/emily/postgres".properties.recordsize;
      expected = "16K";
    };
    zfs_pg_data_ssd = {
      expr = ssdLayout."fast/emily/postgres".properties.recordsize;
      expected = "8K";
    };
    zfs_pg_logbias = {
      expr = [
        layout."tank/emily/postgres".properties.logbias
        layout."tank/emily/postgres-wal".properties.logbias
      ];
      expected = [
        "throughput"
        "latency"
      ];
    };
    zfs_bulk_datasets_1m = {
      expr = map (d: layout."tank/emily/${d}".properties.recordsize) [
        "mlflow-artifacts"
        "dvc-cache"
        "models"
        "backups"
      ];
      expected = [
        "1M"
        "1M"
        "1M"
        "1M"
      ];
    };
    zfs_atime_off_everywhere = {
      expr = builtins.all (d: layout.${d}.properties.atime == "off") (builtins.attrNames layout);
      expected = true;
    };
    zfs_compression_everywhere = {
      expr = builtins.all (d: builtins.elem layout.${d}.properties.compression [
        "lz4"
        "zstd"
      ]) (builtins.attrNames layout);
      expected = true;
    };
    zfs_mountpoints_unique = {
      expr =
        let
          mps = map (d: layout.${d}.mountpoint) (builtins.attrNames layout);
        in
        builtins.length mps == builtins.length (builtins.attrNames (builtins.listToAttrs (map (m: {
          name = m;
          value = true;
        }) mps)));
      expected = true;
    };
    zfs_create_args = {
      expr = zfs.createArgs {
        mountpoint = "/m";
        properties = {
          recordsize = "1M";
          atime = "off";
        };
      };
      expected = [
        "-o"
        "atime=off"
        "-o"
        "recordsize=1M"
        "-o"
        "mountpoint=/m"
      ];
    };

    # settings -> environment
    env_nested = {
      expr = env.toEnv {
        database = {
          hnsw_m = 24;
          embedding_storage = "halfvec";
        };
        log_level = "info";
      };
      expected = {
        EMILY_DATABASE__HNSW_M = "24";
        EMILY_DATABASE__EMBEDDING_STORAGE = "halfvec";
        EMILY_LOG_LEVEL = "info";
      };
    };
    env_scalars = {
      expr = env.toEnv {
        a = true;
        b = false;
        c = 0.5;
        d = [
          "x"
          "y"
        ];
        e = null;
      };
      expected = {
        EMILY_A = "true";
        EMILY_B = "false";
        EMILY_C = "0.5";
        EMILY_D = ''["x","y"]'';
      };
    };
    env_rejects_functions = {
      expr = throws (env.toEnv { f = x: x; }).EMILY_F;
      expected = true;
    };
    env_secret_file_vars = {
      expr = env.secretEnv {
        "database.dsn" = "/run/keys/dsn";
        "redis.url" = "/run/keys/redis";
      };
      expected = {
        EMILY_DATABASE__DSN_FILE = "%d/database-dsn";
        EMILY_REDIS__URL_FILE = "%d/redis-url";
      };
    };
    env_load_credential = {
      expr = env.loadCredential { "database.admin_dsn" = "/run/keys/admin"; };
      expected = [ "database-admin_dsn:/run/keys/admin" ];
    };
    env_secrets_detected_in_plain_settings = {
      expr = env.secretsIn {
        database = {
          dsn = "postgresql://u:p@h/db";
          hnsw_m = 16;
        };
        redis.url = "redis://:pw@h";
      };
      expected = [
        "database.dsn"
        "redis.url"
      ];
    };
    k8s_zenoh_policy_port = {
      expr = map (p: (builtins.head (builtins.head p.selectors).matchArgs).values) policy.spec.kprobes;
      expected = [
        [ "7447" ]
        [ "7447" ]
        [ "7447" ]
      ];
    };
    k8s_zenoh_policy_kind = {
      expr = [
        policy.apiVersion
        policy.kind
        (map (p: p.call) policy.spec.kprobes)
      ];
      expected = [
        "cilium.io/v1alpha1"
        "TracingPolicy"
        [
          "tcp_connect"
          "tcp_sendmsg"
          "tcp_close"
        ]
      ];
    };
    k8s_helm_values_roundtrip = {
      expr =
        builtins.fromJSON
          (k8s.helmChart {
            name = "cilium";
            repo = "https://helm.cilium.io";
            version = "1.18.0";
            values = k8s.ciliumValues { apiServerHost = "10.0.0.1"; };
          }).spec.valuesContent;
      expected = k8s.ciliumValues { apiServerHost = "10.0.0.1"; };
    };
    k8s_hubble_on = {
      expr = with (k8s.ciliumValues { apiServerHost = "h"; }).hubble; [
        enabled
        relay.enabled
      ];
      expected = [
        true
        true
      ];
    };
    systemd_hardening_baseline = {
      expr = with systemd.hardened; [
        ProtectSystem
        ProtectHome
        PrivateTmp
        NoNewPrivileges
      ];
      expected = [
        "strict"
        true
        true
        true
      ];
    };
    systemd_gpu_opens_devices_only = {
      expr = [
        systemd.gpu.PrivateDevices
        (builtins.all (d: builtins.substring 0 11 d == "/dev/nvidia") systemd.gpu.DeviceAllow)
      ];
      expected = [
        false
        true
      ];
    };
    net_loopback_addresses = {
      expr = map net.isLoopback [
        "127.0.0.1"
        "127.1.2.3"
        "::1"
        "localhost"
        "0.0.0.0"
        "10.77.0.1"
        "127.0.0.1.evil"
        "::"
      ];
      expected = [
        true
        true
        true
        true
        false
        false
        false
        false
      ];
    };
    zfs_dvc_remote_dataset = {
      expr = layout."tank/emily/dvc-remote".mountpoint;
      expected = "/var/lib/emily/dvc-remote";
    };
    env_no_false_secret_alarm = {
      expr = env.secretsIn { database.hnsw_m = 16; };
      expected = [ ];
    };
  };

  results = map (name: {
    inherit name;
    actual = cases.${name}.expr;
    inherit (cases.${name}) expected;
  }) (builtins.attrNames cases);
  failures = builtins.filter (r: r.actual != r.expected) results;
  passed = builtins.length results - builtins.length failures;
  failed = builtins.length failures;
in
{
  inherit passed failed failures;
  summary = "${toString passed} passed, ${toString failed} failed";
}
