# VM test: PostgreSQL + pgvector from services.emily.memory, the migration unit, then our own
# CLI checks (`emily doctor --json`, `emily memory ingest/search/stats --json`) as the
# least-privilege service user, the way the services themselves connect.
{ pkgs, self }:
pkgs.testers.runNixOSTest {
  name = "emily-memory";

  nodes.machine =
    { config, ... }:
    {
      imports = [ self.nixosModules.default ];
      virtualisation = {
        memorySize = 4096;
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
      };
      # The DSN is a secret setting even without a password: it travels as a file, like in units.
      environment.etc."emily-test/app-dsn" = {
        text = "postgresql:///emily?host=/run/postgresql&user=${config.services.emily.memory.appRole}";
        user = config.services.emily.appUser;
        mode = "0400";
      };
      environment.etc."emily-test/episodes.jsonl".text = ''
        {"content": "Walked the dog along the river at dawn", "occurred_at": "2026-09-03T06:10:00+00:00", "affect": [0.6, 0.2, 0.1], "context": {"place": "river"}}
        {"content": "Argued about the budget in the quarterly meeting", "occurred_at": "2026-10-14T15:00:00+00:00", "affect": [-0.5, 0.7, -0.2], "context": {"place": "office"}}
        {"content": "Fixed the flaky backup job on the lab server", "occurred_at": "2026-11-02T21:30:00+00:00", "affect": [0.4, 0.3, 0.5], "context": {"place": "home"}}
      '';
    };

  testScript =
    { nodes, ... }:
    let
      emily = nodes.machine.services.emily;
      # The service environment minus the credential paths (%d exists only inside units).
      envArgs = pkgs.lib.concatStringsSep " " (
        pkgs.lib.mapAttrsToList (k: v: "${k}='${v}'") (
          pkgs.lib.filterAttrs (k: _: !(pkgs.lib.hasSuffix "_FILE" k)) emily.environment
        )
      );
      app =
        cmd:
        "runuser -u ${emily.appUser} -- env ${envArgs} EMILY_STATE_DIR=/tmp/emily-app EMILY_CACHE_DIR=/tmp/emily-app/cache EMILY_DATABASE__DSN_FILE=/etc/emily-test/app-dsn ${cmd}";
    in
    ''
      import json

      machine.wait_for_unit("postgresql.service")
      machine.wait_for_unit("emily-memory-migrate.service")

      with subtest("pgvector and the preload libraries are in place"):
          machine.succeed("sudo -u postgres psql -d emily -tAc \"SELECT extversion FROM pg_extension WHERE extname = 'vector'\" | grep -E '^[0-9]'")
          preload = machine.succeed("sudo -u postgres psql -tAc 'SHOW shared_preload_libraries'")
          assert "pg_stat_statements" in preload and "pg_prewarm" in preload, preload
          # 25% of the declared 4096 MB.
          machine.succeed("sudo -u postgres psql -tAc 'SHOW shared_buffers' | grep -x 1GB")

      with subtest("the app role cannot act as the owner"):
          machine.fail("runuser -u ${emily.appUser} -- psql 'postgresql:///emily?host=/run/postgresql&user=${emily.user}' -c 'SELECT 1'")

      with subtest("emily doctor reports the database reachable"):
          report = json.loads(machine.succeed("${app "emily doctor --json"}"))
          print(json.dumps(report, indent=2))

      with subtest("ingest, search and stats through the CLI"):
          machine.succeed("${app "emily memory ingest /etc/emily-test/episodes.jsonl"}")
          stats = json.loads(machine.succeed("${app "emily memory stats --json"}"))
          assert stats["rows"] == 3, stats
          hits = json.loads(machine.succeed("${app "emily memory search 'walking the dog by the water' --k 1 --json"}"))
          assert "dog" in hits[0]["content"], hits

      with subtest("timers are scheduled and the backup unit writes a dump"):
          machine.succeed("systemctl list-timers | grep emily-memory-maintain")
          machine.succeed("systemctl start emily-memory-backup.service")
          machine.succeed("ls /var/backup/emily/emily-*.dump")
    '';
}
