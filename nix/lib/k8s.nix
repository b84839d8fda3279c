# Kubernetes objects the observability module hands to k3s: the Cilium/Hubble and Tetragon Helm
# charts (k3s' helm-controller) and a Tetragon TracingPolicy for Zenoh. Plain data, so the
# tests can check them without a cluster.
{
  # Zenoh's default router/peer port; the agents' pub/sub traffic shows up here.
  zenohPort = 7447;

  zenohTracingPolicy =
    {
      port ? 7447
    }:
    let
      probe = call: {
        inherit call;
        syscall = false;
        args = [
          {
            index = 0;
            type = "sock";
          }
        ];
        selectors = [
          {
            matchArgs = [
              {
                index = 0;
                operator = "DPort";
                values = [ (toString port) ];
              }
            ];
          }
        ];
      };
    in
    {
      apiVersion = "cilium.io/v1alpha1";
      kind = "TracingPolicy";
      metadata.name = "emily-zenoh-tcp-${toString port}";
      spec.kprobes = [
        # Who opens Zenoh sessions, and who keeps talking on them.
        (probe "tcp_connect")
        (probe "tcp_sendmsg")
        (probe "tcp_close")
      ];
    };

  helmChart =
    {
      name,
      repo,
      chart ? name,
      version,
      namespace ? "kube-system",
      values ? { }
    }:
    {
      apiVersion = "helm.cattle.io/v1";
      kind = "HelmChart";
      metadata = {
        inherit name;
        namespace = "kube-system";
      };
      spec = {
        inherit repo chart version;
        targetNamespace = namespace;
        createNamespace = true;
        # JSON is valid YAML, and helm-controller reads valuesContent as YAML.
        valuesContent = builtins.toJSON values;
      };
    };

  ciliumValues =
    {
      apiServerHost,
      apiServerPort ? 6443
    }:
    {
      # k3s runs without kube-proxy and flannel; Cilium replaces both.
      kubeProxyReplacement = true;
      k8sServiceHost = apiServerHost;
      k8sServicePort = apiServerPort;
      ipam.mode = "kubernetes";
      hubble = {
        enabled = true;
        relay.enabled = true;
        ui.enabled = true;
        metrics.enabled = [
          "dns"
          "drop"
          "tcp"
          "flow"
          "port-distribution"
          "httpV2"
        ];
      };
      prometheus.enabled = true;
      operator.replicas = 1;
    };
}
