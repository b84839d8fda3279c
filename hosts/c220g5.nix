# The lab server: Cisco UCS C220 M5 (c220g5): 28 cores, 128 GB RAM, Tesla P4 (Pascal, sm_61,
# 8 GB), ZFS RAIDZ2 on HDDs, reachable over WireGuard only. Disk/boot specifics belong in hardware-configuration.nix generated on the
# machine (`nixos-generate-config`); everything Emily needs is declared here.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  pool = "tank";
in
{
  imports = [
    ../modules/default.nix
  ] ++ lib.optional (builtins.pathExists ./c220g5-hardware.nix) ./c220g5-hardware.nix;

  networking.hostName = "c220g5";
  # ZFS refuses to import pools without a stable host id (`head -c4 /dev/urandom | od -A none -t x4`).
  networking.hostId = "e1d1c5a5";
  system.stateVersion = "26.05";

  boot.loader.systemd-boot.enable = lib.mkDefault true;
  boot.loader.efi.canTouchEfiVariables = lib.mkDefault true;
  # The release's default LTS kernel, not a versioned set: nixpkgs keeps `linuxPackages` for the
  # whole release (moving it along the LTS line), while `linuxPackages_6_12` & co. become `throw`
  # aliases once their branch reaches end of life (6.12: December 2026, inside 26.05's life). It
  # is also the kernel nixpkgs builds and tests ZFS and the nvidia legacy_580 driver against;
  # linuxPackages_latest would often run ahead of ZFS's supported range. Any LTS since 5.15
  # satisfies Cilium (the observability module asserts it).
  boot.kernelPackages = pkgs.linuxPackages;
  boot.supportedFilesystems = [ "zfs" ];
  boot.zfs.extraPools = [ pool ];
  # PostgreSQL gets 32 GB of shared_buffers: cap the ARC so the two caches don't fight.
  boot.kernelParams = [ "zfs.zfs_arc_max=${toString (48 * 1024 * 1024 * 1024)}" ];
  fileSystems."/" = lib.mkDefault {
    device = "${pool}/root";
    fsType = "zfs";
  };
  fileSystems."/boot" = lib.mkDefault {
    device = "/dev/disk/by-label/ESP";
    fsType = "vfat";
  };

  nixpkgs.config = {
    allowUnfree = true;
    # Build CUDA kernels for the P4 only.
    cudaCapabilities = [ "6.1" ];
  };

  # Every service listens on loopback or the WireGuard interface; SSH stays for break-glass.
  networking.firewall = {
    enable = true;
    allowedUDPPorts = [ 51820 ];
    interfaces.wg0.allowedTCPPorts = [ config.services.emily.agents.port ];
  };
  networking.wireguard.interfaces.wg0 = {
    ips = [ "10.77.0.1/24" ];
    listenPort = 51820;
    # Generated on the host: `wg genkey > /var/lib/wireguard/private.key`.
    privateKeyFile = "/var/lib/wireguard/private.key";
    generatePrivateKeyFile = true;
    peers = [ ];
  };
  # The API binds the WireGuard address, which exists only once the tunnel is up.
  systemd.services.emily-agents = {
    after = [ "wireguard-wg0.service" ];
    wants = [ "wireguard-wg0.service" ];
  };
  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };

  services.emily = {
    hardware = {
      ramMB = 128 * 1024;
      cores = 28;
      storage = "hdd";
      zfs = true;
      gpu = {
        name = "Tesla P4";
        computeCapability = "6.1";
      };
    };

    settings = {
      log_level = "info";
      database = {
        # More HNSW neighbours: the host has RAM to spare and recall matters more than size.
        hnsw_m = 24;
        hnsw_ef_construction = 128;
        pool_max_size = 16;
      };
      embedder.threads = 8;
    };

    storage = {
      enable = true;
      inherit pool;
    };

    memory.enable = true;

    # SGLang needs sm_75+; the P4 is sm_61, so llama.cpp with CUDA 12 serves Phi-3-mini Q4.
    inference = {
      enable = true;
      backend = "llama-cpp";
      model = "/var/lib/emily/models/Phi-3-mini-4k-instruct-q4.gguf";
      contextSize = 4096;
      threads = 14;
    };

    agents = {
      enable = true;
      host = "10.77.0.1";
      tokenFile = "/var/lib/emily-secrets/api-token";
    };

    # MLflow (runs, model registry, prompt registry) on PostgreSQL, artefacts on the
    # mlflow-artifacts dataset, behind MLflow's basic auth; the DVC pipeline's cache and remote
    # on the dvc-cache / dvc-remote datasets; `emily mlops watch` hourly, the monitor every 15 min.
    mlops = {
      enable = true;
      auth.adminPasswordFile = "/var/lib/emily-secrets/mlflow-admin-password";
    };

    # Redis, Feast's SQL registry and offline store on PostgreSQL, the feature server on
    # loopback (no IdP on this host, so Feast's no_auth, which the module allows on loopback
    # only), materialization every 10 minutes.
    features = {
      enable = true;
      server.workers = 4;
    };

    observability = {
      enable = true;
      langfuse.secretsFile = "/var/lib/emily-secrets/langfuse.env";
    };
  };
}
