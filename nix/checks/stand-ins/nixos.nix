# Stand-ins for the NixOS options our modules, host and VM-test nodes read or define: option
# DECLARATIONS mirroring upstream's types (so the real lib.evalModules merges, type-checks and
# prioritises our definitions the way NixOS would), plus the few upstream config lines whose
# behaviour a check depends on, quoted with their source. Options whose inner structure no check
# inspects are declared loosely (`loose`: a freeform attrset of anything), and said so.
#
# Sources (NixOS/nixpkgs, read through the code index; revisions as stored there):
#   systemd unit options:  nixos/lib/systemd-unit-options.nix   (unitOption merge)
#   postgresql:            nixos/modules/services/databases/postgresql.nix
#                          (25.11-era text: package default postgresql_17 for stateVersion >= 25.11,
#                          `jit = mkDefault "off"`, MemoryDenyWriteExecute, ensureDBOwnership assertion)
#   kernel:                nixos/modules/system/boot/kernel.nix @ 8a2b0a70a70526480d5db9e67c2548ec57f0f6fc
#   nixpkgs (normal):      ./nixpkgs.nix;   read-only: ./read-only.nix
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkDefault
    types
    ;
  opt = type: default: mkOption { inherit type default; };
  loose = opt (types.submodule { freeformType = types.attrsOf types.anything; }) { };
  listOfStr = opt (types.listOf types.str) [ ];

  # nixos/lib/systemd-unit-options.nix
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: lib.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  unitCommon = {
    enable = opt types.bool true;
    description = opt types.singleLineStr "";
    wantedBy = listOfStr;
    requiredBy = listOfStr;
    after = listOfStr;
    before = listOfStr;
    wants = listOfStr;
    requires = listOfStr;
    partOf = listOfStr;
    bindsTo = listOfStr;
    unitConfig = opt (types.attrsOf unitOption) { };
  };
  serviceType = types.submodule {
    options = unitCommon // {
      environment = opt (
        with types;
        attrsOf (
          nullOr (oneOf [
            str
            path
            package
          ])
        )
      ) { };
      path = opt (
        with types;
        listOf (oneOf [
          package
          str
        ])
      ) [ ];
      serviceConfig = opt (types.attrsOf unitOption) { };
      script = opt types.lines "";
      preStart = opt types.lines "";
      postStart = opt types.lines "";
      restartTriggers = opt (types.listOf types.unspecified) [ ];
      startAt = opt (with types; either str (listOf str)) [ ];
    };
  };
  timerType = types.submodule {
    options = unitCommon // {
      timerConfig = opt (types.attrsOf unitOption) { };
    };
  };

  pg = config.services.postgresql;
  extensionNames = map lib.getName pg.finalPackage.installedExtensions;
  extensionInstalled = extension: lib.elem extension extensionNames;
in
{
  options = {
    assertions = opt (types.listOf types.unspecified) [ ];
    warnings = opt (types.listOf types.str) [ ];
    system.stateVersion = opt types.str "26.05";
    system.checks = opt (types.listOf types.package) [ ];

    networking = {
      hostName = opt types.str "nixos";
      hostId = opt (types.nullOr types.str) null;
      firewall = {
        enable = opt types.bool true;
        allowedTCPPorts = opt (types.listOf types.port) [ ];
        allowedUDPPorts = opt (types.listOf types.port) [ ];
        trustedInterfaces = listOfStr;
        interfaces = opt (types.attrsOf (
          types.submodule {
            options = {
              allowedTCPPorts = opt (types.listOf types.port) [ ];
              allowedUDPPorts = opt (types.listOf types.port) [ ];
            };
          }
        )) { };
      };
      wireguard.interfaces = opt (types.attrsOf types.anything) { }; # loose
    };

    users.users = opt (types.attrsOf (
      types.submodule (
        { name, ... }:
        {
          options = {
            name = opt types.str name;
            isSystemUser = opt types.bool false;
            isNormalUser = opt types.bool false;
            group = opt types.str "";
            extraGroups = listOfStr;
            description = opt types.str "";
            home = opt types.path "/var/empty";
            uid = opt (types.nullOr types.int) null;
            useDefaultShell = opt types.bool false;
          };
        }
      )
    )) { };
    users.groups = opt (types.attrsOf (
      types.submodule {
        options = {
          gid = opt (types.nullOr types.int) null;
          members = listOfStr;
        };
      }
    )) { };

    environment.systemPackages = opt (types.listOf types.package) [ ];
    environment.pathsToLink = listOfStr;
    environment.etc = opt (types.attrsOf (
      types.submodule {
        options = {
          text = opt (types.nullOr types.lines) null;
          source = opt (types.nullOr types.path) null;
          user = opt types.str "+0";
          group = opt types.str "+0";
          mode = opt types.str "symlink";
        };
      }
    )) { };

    systemd.services = opt (types.attrsOf serviceType) { };
    systemd.timers = opt (types.attrsOf timerType) { };
    systemd.targets = opt (types.attrsOf (types.submodule { options = unitCommon; })) { };
    systemd.tmpfiles.rules = listOfStr;

    # nixos/modules/system/boot/kernel.nix (the apply is quoted verbatim).
    boot.kernelPackages = mkOption {
      default = pkgs.linuxPackages;
      type = types.raw;
      apply =
        kernelPackages:
        kernelPackages.extend (
          self: super: {
            kernel = super.kernel.override (originalArgs: {
              inherit (config.boot.kernel) randstructSeed;
              kernelPatches = (originalArgs.kernelPatches or [ ]) ++ config.boot.kernelPatches;
              features = lib.recursiveUpdate super.kernel.features config.boot.kernel.features;
            });
          }
        );
    };
    boot.kernelPatches = opt (types.listOf types.attrs) [ ];
    boot.kernel.features = opt types.attrs { };
    boot.kernel.randstructSeed = opt types.str "";
    boot.kernelParams = listOfStr;
    boot.kernelModules = listOfStr;
    boot.supportedFilesystems = opt (types.coercedTo (types.listOf types.str) (
      enabled: lib.listToAttrs (map (fs: lib.nameValuePair fs true) enabled)
    ) (types.attrsOf types.bool)) { };
    boot.zfs.extraPools = listOfStr;
    boot.zfs.package = opt types.package pkgs.zfs;
    boot.loader = loose;

    fileSystems = opt (types.attrsOf (
      types.submodule {
        options = {
          device = opt (types.nullOr types.str) null;
          fsType = opt types.str "auto";
          options = listOfStr;
        };
      }
    )) { };

    hardware.nvidia = loose;
    hardware.graphics.enable = opt types.bool false;
    services.xserver.videoDrivers = listOfStr;
    services.openssh = loose;
    services.zfs.autoScrub.enable = opt types.bool false;
    services.k3s = {
      enable = opt types.bool false;
      role = opt (types.enum [
        "server"
        "agent"
      ]) "server";
      extraFlags = opt (types.coercedTo types.str lib.singleton (types.listOf types.str)) [ ];
      manifests = opt (types.attrsOf (
        types.submodule {
          options.content = opt (types.nullOr types.anything) null;
        }
      )) { };
    };
    services.opentelemetry-collector = {
      enable = opt types.bool false;
      settings = opt (pkgs.formats.yaml { }).type { };
    };
    # nixos/modules/services/monitoring/prometheus/default.nix (the options we set).
    services.prometheus = {
      enable = mkEnableOption "Prometheus monitoring daemon";
      port = opt types.port 9090;
      listenAddress = opt types.str "0.0.0.0";
      retentionTime = opt (types.nullOr types.str) null;
      globalConfig = loose;
      scrapeConfigs = opt (types.listOf (types.attrsOf types.anything)) [ ]; # loose items
      rules = opt (types.listOf types.str) [ ];
      exporters.node = {
        enable = mkEnableOption "the Prometheus node exporter";
        listenAddress = opt types.str "";
        port = opt types.port 9100;
        enabledCollectors = listOfStr;
        extraFlags = listOfStr;
      };
    };
    services.redis.servers = opt (types.attrsOf (
      types.submodule (
        { name, ... }:
        {
          options = {
            enable = opt types.bool false;
            user = mkOption {
              type = types.str;
              default = if name == "" then "redis" else "redis-${name}";
            };
            group = mkOption {
              type = types.str;
              default = if name == "" then "redis" else "redis-${name}";
            };
            bind = opt (types.nullOr types.str) "127.0.0.1";
            port = opt types.port (if name == "" then 6379 else 0);
            unixSocket = opt (types.nullOr types.path) null;
            unixSocketPerm = opt types.int 660;
            appendOnly = opt types.bool false;
            settings = opt (
              with types;
              attrsOf (oneOf [
                bool
                int
                str
                (listOf str)
              ])
            ) { };
          };
        }
      )
    )) { };

    virtualisation = loose;

    # nixos/modules/services/databases/postgresql.nix (declarations of the options we touch).
    services.postgresql = {
      enable = mkEnableOption "PostgreSQL Server";
      enableJIT = mkEnableOption "JIT support";
      package = mkOption { type = types.package; };
      finalPackage = mkOption {
        type = types.package;
        readOnly = true;
        default =
          let
            withJit = if pg.enableJIT then pg.package.withJIT else pg.package.withoutJIT;
          in
          if pg.extensions == [ ] then withJit else withJit.withPackages pg.extensions;
      };
      dataDir = opt types.path "/var/lib/postgresql/${pg.package.psqlSchema}";
      authentication = opt types.lines "";
      identMap = opt types.lines "";
      initdbArgs = opt (types.listOf types.str) [ ];
      ensureDatabases = opt (types.listOf types.str) [ ];
      ensureUsers = opt (types.listOf (
        types.submodule {
          options = {
            name = mkOption { type = types.str; };
            ensureDBOwnership = opt types.bool false;
            ensureClauses = opt (types.submodule {
              options = lib.genAttrs [
                "superuser"
                "createrole"
                "createdb"
                "inherit"
                "login"
                "replication"
                "bypassrls"
              ] (_: opt (types.nullOr types.bool) null);
            }) { };
          };
        }
      )) [ ];
      enableTCPIP = opt types.bool false;
      extensions = opt (
        with types;
        coercedTo (listOf path) (path: _ignorePg: path) (functionTo (listOf path))
      ) (_: [ ]);
      settings = mkOption {
        type =
          with types;
          submodule {
            freeformType = attrsOf (oneOf [
              bool
              float
              int
              str
            ]);
            options = {
              shared_preload_libraries = opt (nullOr (coercedTo (listOf str) (lib.concatStringsSep ",") commas)) null;
              log_line_prefix = opt types.str "[%p] ";
              port = opt types.port 5432;
            };
          };
        default = { };
      };
      superUser = mkOption {
        type = types.str;
        default = "postgres";
        readOnly = true;
      };
    };
  };

  # Upstream postgresql.nix behaviour the checks depend on (quoted from the source above).
  config = lib.mkIf pg.enable {
    assertions = map (
      { name, ensureDBOwnership, ... }:
      {
        assertion = ensureDBOwnership -> lib.elem name pg.ensureDatabases;
        message = ''
          For each database user defined with `services.postgresql.ensureUsers` and
          `ensureDBOwnership = true;`, a database with the same name must be defined
          in `services.postgresql.ensureDatabases`.

          Offender: ${name} has not been found among databases.
        '';
      }
    ) pg.ensureUsers;
    services.postgresql.settings = {
      log_destination = "stderr";
      listen_addresses = if pg.enableTCPIP then "*" else "localhost";
      jit = mkDefault (if pg.enableJIT then "on" else "off");
    };
    services.postgresql.package =
      let
        base =
          if lib.versionAtLeast config.system.stateVersion "25.11" then
            pkgs.postgresql_17
          else
            pkgs.postgresql;
      in
      mkDefault (if pg.enableJIT then base.withJIT else base);
    users.users.postgres = {
      group = "postgres";
      isSystemUser = true;
    };
    users.groups.postgres = { };
    environment.systemPackages = [ pg.finalPackage ];
    systemd.services.postgresql = {
      description = "PostgreSQL Server";
      after = [ "network.target" ];
      serviceConfig = {
        User = "postgres";
        Group = "postgres";
        ExecStart = "${pg.finalPackage}/bin/postgres";
        MemoryDenyWriteExecute = mkDefault (
          pg.settings.jit == "off" && (!lib.any extensionInstalled [ "plv8" ])
        );
      };
    };
    systemd.services.postgresql-setup = {
      description = "PostgreSQL Setup Scripts";
      requires = [ "postgresql.service" ];
      after = [ "postgresql.service" ];
      serviceConfig = {
        User = "postgres";
        Group = "postgres";
        Type = "oneshot";
        RemainAfterExit = true;
      };
    };
  };
}
