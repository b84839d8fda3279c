# Observability: single-node k3s with Cilium (eBPF datapath) and Hubble, Tetragon with a
# TracingPolicy for Zenoh traffic, Langfuse for LLM traces, an OpenTelemetry collector that
# Emily's OTLP exporter sends to, and Prometheus scraping the Emily services' /metrics with
# alert rules on the agent loop and the feature monitor's gauges.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  elib = import ../nix/lib;
  emily = config.services.emily;
  cfg = emily.observability;
  inherit (lib) mkOption mkEnableOption types;
  kernelVersion = config.boot.kernelPackages.kernel.version;
  chart = elib.k8s.helmChart;
  prom = cfg.prometheus;
  target = host: port: "${if lib.hasInfix ":" host then "[${host}]" else host}:${toString port}";
  monitorGauges = (emily.mlops.enable or false) && emily.mlops.monitor.enable;
  scrapeTargets =
    lib.optional monitorGauges {
      job = "emily-monitor";
      target = target "127.0.0.1" prom.nodeExporterPort;
      unit = "prometheus-node-exporter";
    }
    ++ lib.optional (emily.agents.enable or false) {
      job = "emily-agents";
      target = target emily.agents.host emily.agents.port;
    }
    ++ lib.optional (emily.inference.enable or false) {
      job = "emily-inference";
      target = target emily.inference.host emily.inference.port;
    };
  alert = name: expr: for: summary: {
    alert = name;
    inherit expr for;
    labels.severity = "warning";
    annotations.summary = summary;
  };
  # Prometheus' rule file format (JSON is YAML): services.prometheus.rules takes each as text.
  alertRules = builtins.toJSON {
    groups = [
      {
        name = "emily";
        rules = [
          (alert "EmilyTargetDown" "up{job=~\"emily-.*\"} == 0" "5m" "{{ $labels.job }} does not answer /metrics")
          (alert "EmilyFeatureMonitorDown" "emily_feature_monitor_up == 0" "15m" "the feature monitor fails (PostgreSQL or Redis unreachable?)")
          (alert "EmilyFeatureStale" "max by (view) (emily_feature_stale) == 1" "30m" "online features of {{ $labels.view }} are older than their TTL (is materialization running?)")
          (alert "EmilyFeatureDrift" "max by (view, feature) (emily_feature_drifting) == 1" "1h" "{{ $labels.view }}:{{ $labels.feature }} drifts from its training baseline")
          (alert "EmilyModelMonitorAlert" "max by (check) (emily_monitor{value=\"alert\"}) == 1" "0m" "model monitor check {{ $labels.check }} alerts (details: journalctl -u emily-mlops-monitor)")
          (alert "EmilyModelMonitorStale" "time() - emily_monitor_last_pass_timestamp_seconds > 3600" "15m" "emily mlops monitor has not completed a pass for an hour")
          (alert "EmilyTurnsRefused" "increase(emily_agent_turns_refused_total[15m]) > 0" "0m" "the agents API refuses turns (admission control)")
        ];
      }
    ];
  };
in
{
  imports = [ ./common.nix ];

  options.services.emily.observability = {
    enable = mkEnableOption "Emily's observability stack";

    cilium = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run k3s with Cilium as CNI and kube-proxy replacement, plus Hubble.";
      };
      version = mkOption {
        type = types.str;
        default = "1.18.3";
        description = "Cilium Helm chart version.";
      };
      apiServerHost = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Address Cilium reaches the Kubernetes API on (kube-proxy is replaced, so it must be explicit).";
      };
    };

    tetragon = {
      enable = mkOption {
        type = types.bool;
        default = cfg.cilium.enable;
        defaultText = lib.literalExpression "cilium.enable";
        description = "Run Tetragon with the Zenoh TracingPolicy.";
      };
      version = mkOption {
        type = types.str;
        default = "1.5.0";
        description = "Tetragon Helm chart version.";
      };
      zenohPort = mkOption {
        type = types.port;
        default = elib.k8s.zenohPort;
        description = "TCP port whose connections and sends Tetragon traces.";
      };
    };

    langfuse = {
      enable = mkOption {
        type = types.bool;
        default = cfg.cilium.enable;
        defaultText = lib.literalExpression "cilium.enable";
        description = "Deploy Langfuse (Helm chart) in k3s.";
      };
      version = mkOption {
        type = types.str;
        default = "1.5.0";
        description = "Langfuse Helm chart version.";
      };
      secretsFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/agenix/langfuse.env";
        description = ''
          KEY=value file (salt, nextauth-secret, encryption-key, postgres/clickhouse/redis/s3
          passwords) turned into the Kubernetes Secret `langfuse` at boot; the chart reads
          its secrets from there, so none of them enters the Nix store.
        '';
      };
      otlpAuthFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/agenix/langfuse-otlp.env";
        description = "EnvironmentFile with LANGFUSE_OTLP_AUTH=\"Basic <base64 pk:sk>\" for the collector's Langfuse exporter.";
      };
      endpoint = mkOption {
        type = types.str;
        default = "http://127.0.0.1:3000";
        description = "Langfuse base URL as seen from the host.";
      };
      publicKeyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "File with the Langfuse project's public key (pk-lf-...); with secretKeyFile, Emily also sends LLM traces to Langfuse directly.";
      };
      secretKeyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "File with the Langfuse project's secret key (sk-lf-...).";
      };
    };

    otelCollector = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run an OpenTelemetry collector on loopback (OTLP gRPC 4317, HTTP 4318).";
      };
    };

    prometheus = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run Prometheus on loopback: scrapes the agents API and the LLM server, evaluates Emily's alert rules (firing alerts: the ALERTS series, /alerts).";
      };
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Listen address of Prometheus.";
      };
      port = mkOption {
        type = types.port;
        default = 9090;
        description = "Listen port of Prometheus.";
      };
      retentionTime = mkOption {
        type = types.str;
        default = "30d";
        description = "How long samples are kept.";
      };
      nodeExporterPort = mkOption {
        type = types.port;
        default = 9100;
        description = "Loopback port of node_exporter, whose textfile collector serves `emily mlops monitor`'s gauges (with services.emily.mlops.monitor).";
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the k3s API (6443), Cilium VXLAN (8472/udp), health (4240) and Hubble (4244) ports.";
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = !cfg.cilium.enable || elib.version.ciliumKernelOk kernelVersion;
            message = elib.version.ciliumKernelMessage kernelVersion;
          }
          {
            assertion = !cfg.tetragon.enable || cfg.cilium.enable;
            message = "services.emily.observability.tetragon needs the k3s cluster of services.emily.observability.cilium.enable.";
          }
          {
            assertion = !cfg.langfuse.enable || (cfg.cilium.enable && cfg.langfuse.secretsFile != null);
            message = "services.emily.observability.langfuse needs cilium.enable (it runs in k3s) and langfuse.secretsFile (KEY=value secrets file outside the store).";
          }
        ];
      }

      (lib.mkIf prom.enable {
        services.prometheus = {
          enable = true;
          inherit (prom) listenAddress port retentionTime;
          globalConfig = {
            scrape_interval = "30s";
            evaluation_interval = "30s";
          };
          scrapeConfigs = map (t: {
            job_name = t.job;
            metrics_path = "/metrics";
            static_configs = [ { targets = [ t.target ]; } ];
          }) scrapeTargets;
          rules = [ alertRules ];
          exporters.node = lib.mkIf monitorGauges {
            enable = true;
            listenAddress = "127.0.0.1";
            port = prom.nodeExporterPort;
            enabledCollectors = [ "textfile" ];
            extraFlags = [ "--collector.textfile.directory=${toString emily.mlops.monitor.metricsDir}" ];
          };
        };
        # Scrapes start once the services are up (the agents API binds the WireGuard address).
        systemd.services.prometheus.after = map (t: "${t.unit or t.job}.service") scrapeTargets;
      })

      (lib.mkIf cfg.cilium.enable {
        services.k3s = {
          enable = true;
          role = "server";
          extraFlags = [
            "--flannel-backend=none"
            "--disable-network-policy"
            "--disable-kube-proxy"
            "--disable=traefik"
            "--write-kubeconfig-mode=0600"
          ];
          manifests =
            {
              cilium.content = chart {
                name = "cilium";
                repo = "https://helm.cilium.io";
                inherit (cfg.cilium) version;
                values = elib.k8s.ciliumValues { apiServerHost = cfg.cilium.apiServerHost; };
              };
            }
            // lib.optionalAttrs cfg.tetragon.enable {
              tetragon.content = chart {
                name = "tetragon";
                repo = "https://helm.cilium.io";
                inherit (cfg.tetragon) version;
                values.tetragon.exportFilename = "tetragon.log";
              };
              tetragon-zenoh-policy.content = elib.k8s.zenohTracingPolicy { port = cfg.tetragon.zenohPort; };
            }
            // lib.optionalAttrs cfg.langfuse.enable {
              langfuse.content = chart {
                name = "langfuse";
                repo = "https://langfuse.github.io/langfuse-k8s";
                inherit (cfg.langfuse) version;
                namespace = "langfuse";
                values = {
                  langfuse = {
                    salt.secretKeyRef = {
                      name = "langfuse";
                      key = "salt";
                    };
                    nextauth.secret.secretKeyRef = {
                      name = "langfuse";
                      key = "nextauth-secret";
                    };
                    encryptionKey.secretKeyRef = {
                      name = "langfuse";
                      key = "encryption-key";
                    };
                  };
                  postgresql.auth.existingSecret = "langfuse";
                  clickhouse.auth.existingSecret = "langfuse";
                  redis.auth.existingSecret = "langfuse";
                  s3.auth.existingSecret = "langfuse";
                };
              };
            };
        };
        # Cilium mounts bpffs and needs these kernel features; k3s ships no CNI of its own now.
        boot.kernelModules = [
          "ip_tables"
          "xt_socket"
          "iptable_mangle"
          "iptable_raw"
          "iptable_filter"
        ];
        networking.firewall = {
          # Cilium manages its own datapath; the host firewall must not drop pod traffic.
          trustedInterfaces = [
            "cilium_host"
            "cilium_net"
            "cilium_vxlan"
            "lxc+"
          ];
          allowedTCPPorts = lib.optionals cfg.openFirewall [
            6443
            4240
            4244
          ];
          allowedUDPPorts = lib.optional cfg.openFirewall 8472;
        };
        environment.systemPackages = [
          pkgs.cilium-cli
          pkgs.hubble
          pkgs.kubectl
        ];
      })

      (lib.mkIf (cfg.langfuse.publicKeyFile != null && cfg.langfuse.secretKeyFile != null) {
        services.emily.settings.telemetry.langfuse_host = lib.mkDefault cfg.langfuse.endpoint;
        services.emily.secrets = {
          "telemetry.langfuse_public_key" = cfg.langfuse.publicKeyFile;
          "telemetry.langfuse_secret_key" = cfg.langfuse.secretKeyFile;
        };
      })

      (lib.mkIf cfg.langfuse.enable {
        systemd.services.emily-langfuse-secret = {
          description = "Emily: Kubernetes Secret for Langfuse from ${cfg.langfuse.secretsFile}";
          wantedBy = [ "multi-user.target" ];
          after = [ "k3s.service" ];
          requires = [ "k3s.service" ];
          path = [ pkgs.k3s ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            LoadCredential = [ "langfuse.env:${cfg.langfuse.secretsFile}" ];
            PrivateTmp = true;
            NoNewPrivileges = true;
          };
          script = ''
            until k3s kubectl get --raw /readyz >/dev/null 2>&1; do sleep 2; done
            k3s kubectl create namespace langfuse --dry-run=client -o yaml | k3s kubectl apply -f -
            k3s kubectl -n langfuse create secret generic langfuse \
              --from-env-file="$CREDENTIALS_DIRECTORY/langfuse.env" --dry-run=client -o yaml \
              | k3s kubectl apply -f -
          '';
        };
      })

      (lib.mkIf cfg.otelCollector.enable {
        services.opentelemetry-collector = {
          enable = true;
          settings = {
            receivers.otlp.protocols = {
              grpc.endpoint = "127.0.0.1:4317";
              http.endpoint = "127.0.0.1:4318";
            };
            processors.batch = { };
            exporters =
              {
                debug.verbosity = "basic";
              }
              // lib.optionalAttrs (cfg.langfuse.otlpAuthFile != null) {
                "otlphttp/langfuse" = {
                  endpoint = "${cfg.langfuse.endpoint}/api/public/otel";
                  headers.Authorization = "\${env:LANGFUSE_OTLP_AUTH}";
                };
              };
            service.pipelines.traces = {
              receivers = [ "otlp" ];
              processors = [ "batch" ];
              exporters = [ "debug" ] ++ lib.optional (cfg.langfuse.otlpAuthFile != null) "otlphttp/langfuse";
            };
          };
        };
        systemd.services.opentelemetry-collector.serviceConfig.EnvironmentFile = lib.mkIf (cfg.langfuse.otlpAuthFile != null) cfg.langfuse.otlpAuthFile;

        # Emily's exporter takes the full OTLP/HTTP traces URL.
        services.emily.settings.telemetry.otlp_endpoint = lib.mkDefault "http://127.0.0.1:4318/v1/traces";
      })
    ]
  );
}
