{
  description = "Emily Sovereign: episodic memory, inference gateway and triune agents on NixOS";

  # No flake.lock is committed: it was written on a machine without access to GitHub, and a lock
  # with invented revisions/narHashes would be worse than none. Run `nix flake lock` first.
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

      # Same key everywhere, so importing several Emily modules adds the overlay once.
      overlayModule = {
        key = "emily-sovereign#overlay";
        nixpkgs.overlays = [ self.overlays.default ];
      };
      withOverlay = file: {
        imports = [
          overlayModule
          file
        ];
      };
      nixosTest = file: import file { inherit pkgs self; };
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
        memory = withOverlay ./modules/memory.nix;
        inference = withOverlay ./modules/inference.nix;
        agents = withOverlay ./modules/agents.nix;
        mlops = withOverlay ./modules/mlops.nix;
        features = withOverlay ./modules/features.nix;
        observability = withOverlay ./modules/observability.nix;
        storage = withOverlay ./modules/storage.nix;
        default = withOverlay ./modules/default.nix;
      };

      nixosConfigurations.c220g5 = lib.nixosSystem {
        inherit system;
        modules = [
          overlayModule
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
          pkgs.postgresql_17
          pkgs.redis
        ];
        env = {
          # uv must neither download a Python nor re-sync over the Nix-built environment.
          UV_NO_SYNC = "1";
          UV_PYTHON = "${built.devEnv}/bin/python";
          UV_PYTHON_DOWNLOADS = "never";
          EMILY_STACK__POSTGRES_BIN_DIR = "${pkgs.postgresql_17.withPackages (ps: [ ps.pgvector ])}/bin";
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
