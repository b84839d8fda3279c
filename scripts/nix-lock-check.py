#!/usr/bin/env python3
"""flake.lock against flake.nix and, where available, the source snapshots it was written from.

Always: every input flake.nix declares is either locked (a `github:` node whose owner/repo match
the input's url, whose `inputs` follow exactly what flake.nix says they follow) or nixpkgs, which
stays unlocked on purpose until `nix flake lock` runs on a networked machine; nothing else is
locked. With the snapshots (argv[2]: the unpacked ../shared/nix-inputs, argv[3]: its README):
each locked node's rev, lastModified and narHash equal the snapshot table's, and the NAR hash of
the unpacked snapshot (nix-hash) equals the narHash, so no recorded hash is unverified.

argv[1]: JSON of `(import ./flake.nix).inputs` (nix-instantiate --eval --strict --json).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNLOCKED = {"nixpkgs"}  # locked by `nix flake lock` on a networked machine (README)
# Snapshot archive (folder) per repository.
SNAPSHOT_DIRS = {
    "pyproject-nix/pyproject.nix": "pyproject-nix",
    "pyproject-nix/uv2nix": "uv2nix",
    "pyproject-nix/build-system-pkgs": "build-system-pkgs",
}


def github(url: str) -> tuple[str, str]:
    m = re.fullmatch(r"github:([^/]+)/([^/?]+)(?:/[^?]*)?", url)
    if m is None:
        raise SystemExit(f"flake.nix input url {url!r} is not a github: url")
    return m.group(1), m.group(2)


def nar_hash(path: Path) -> str:
    def run(*args: str) -> str:
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()

    base32 = run("nix-hash", "--type", "sha256", "--base32", str(path))
    return run(
        "nix",
        "--extra-experimental-features",
        "nix-command",
        "hash",
        "to-sri",
        "--type",
        "sha256",
        base32,
    )


def snapshot_table(readme: Path) -> dict[str, dict[str, str]]:
    rows = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].endswith(".tar.gz"):
            _, repo, rev, last_modified, nar = cells
            rows[repo.lower()] = {"rev": rev, "lastModified": last_modified, "narHash": nar}
    return rows


def main() -> int:
    inputs = json.loads(sys.argv[1])
    snapshots = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    readme = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    lock_path = ROOT / "flake.lock"
    if not lock_path.is_file():
        print(
            "flake.lock: missing (lock the inputs whose sources can be verified)", file=sys.stderr
        )
        return 1
    lock = json.loads(lock_path.read_text())
    nodes = lock["nodes"]
    root = nodes[lock["root"]]
    problems = []
    if lock.get("version") != 7:
        problems.append(f"lock version {lock.get('version')}, expected 7")

    declared = set(inputs)
    locked_names = set(root.get("inputs", {}))
    for extra in sorted(locked_names - declared):
        problems.append(f"{extra} is locked but flake.nix declares no such input")
    for name in sorted(declared - locked_names - UNLOCKED):
        problems.append(f"input {name} is not locked")
    for name in sorted(UNLOCKED & locked_names):
        problems.append(
            f"{name} is locked, but no source for it could be verified here: "
            "leave it to `nix flake lock`"
        )

    table = snapshot_table(readme) if readme is not None and readme.is_file() else {}
    verified = []
    for name in sorted(declared & locked_names):
        node = nodes[root["inputs"][name]]
        spec = inputs[name]
        owner, repo = github(spec["url"])
        locked, original = node.get("locked", {}), node.get("original", {})
        if (locked.get("type"), locked.get("owner"), locked.get("repo")) != ("github", owner, repo):
            problems.append(
                f"{name}: locked {locked.get('owner')}/{locked.get('repo')}, "
                f"flake.nix says {owner}/{repo}"
            )
        if original != {"owner": owner, "repo": repo, "type": "github"}:
            problems.append(f"{name}: original {original} does not match {spec['url']}")
        follows = {
            k: v["follows"].split("/") for k, v in spec.get("inputs", {}).items() if "follows" in v
        }
        if node.get("inputs", {}) != follows:
            problems.append(
                f"{name}: lock inputs {node.get('inputs')} != flake.nix follows {follows}"
            )
        key = f"{owner}/{repo}".lower()
        if table:
            row = table.get(key)
            if row is None:
                problems.append(
                    f"{name}: {owner}/{repo} is not among the snapshots; "
                    "its hash cannot be verified"
                )
                continue
            for field in ("rev", "lastModified", "narHash"):
                if str(locked.get(field)) != row[field]:
                    problems.append(f"{name}: {field} {locked.get(field)} != snapshot {row[field]}")
            if snapshots is not None:
                actual = nar_hash(snapshots / SNAPSHOT_DIRS[key])
                if actual != locked.get("narHash"):
                    problems.append(
                        f"{name}: NAR hash of the snapshot is {actual}, "
                        f"the lock says {locked.get('narHash')}"
                    )
            verified.append(f"{name}@{str(locked.get('rev'))[:8]}")

    if problems:
        print("flake.lock:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    unlocked = ", ".join(sorted(UNLOCKED & declared))
    if table:
        print(
            f"flake.lock: {', '.join(verified)} match flake.nix and their snapshots' NAR hashes; "
            f"{unlocked} unlocked (nix flake lock)"
        )
    else:
        print(
            f"flake.lock: {len(locked_names)} inputs match flake.nix "
            f"(hashes not verified: no snapshots); {unlocked} unlocked"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
