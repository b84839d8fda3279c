"""A pipeline workspace of its own: a git + DVC repository holding a copy of the checkout's
``pipeline/`` (``dvc.yaml``, ``params.yaml`` with overrides), ``python`` linked to the checkout's
so the stages' code dependencies resolve. The demo's scenario trains in one (it must not write
new data into the checkout's pipeline), and the tests train in one.

Created once; opened again it keeps its DVC cache (run cache included, so a stage that ran
before with the same inputs is restored, not recomputed) and gets the parameters given now.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from emily.errors import EmilyError
from emily.mlops.pipeline.layout import Layout, default_pipeline_dir


class WorkspaceError(EmilyError):
    """The workspace could not be created (git missing, a file not copyable)."""


def git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-c", "user.name=emily", "-c", "user.email=emily@localhost", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError as exc:
        raise WorkspaceError("git is not installed", hint="apt install git") from exc
    except subprocess.CalledProcessError as exc:
        raise WorkspaceError(f"git {' '.join(args)} failed: {exc.stderr.strip()}") from exc
    return done.stdout


def write_params(layout: Layout, **sections: Mapping[str, Any]) -> None:
    """Update sections of ``params.yaml`` (keys not named keep their values)."""
    params = yaml.safe_load(layout.params.read_text(encoding="utf-8"))
    for section, values in sections.items():
        params[section].update(values)
    layout.params.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def open_workspace(
    root: Path,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    source: Path | None = None,
) -> Layout:
    """The workspace at ``root`` (created from ``source``, default the checkout's pipeline,
    when missing), with ``params`` written into its ``params.yaml``."""
    pipeline_source = source or default_pipeline_dir()
    checkout = pipeline_source.parent
    pipeline = root / "pipeline"
    layout = Layout(pipeline)
    if not (pipeline / "dvc.yaml").is_file():
        _create(root, checkout, pipeline_source, params or {})
    elif params:
        write_params(layout, **params)
    return layout


def _create(
    root: Path, checkout: Path, pipeline_source: Path, params: Mapping[str, Mapping[str, Any]]
) -> None:
    # Build beside the target and rename: a half-created workspace is never mistaken for one.
    building = root.with_name(root.name + ".creating")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    git(building, "init", "-q")
    (building / "python").symlink_to(checkout / "python")
    shutil.copytree(
        checkout / ".dvc",
        building / ".dvc",
        ignore=shutil.ignore_patterns("cache", "tmp", "config.local"),
    )
    shutil.copy(checkout / ".dvcignore", building / ".dvcignore")
    pipeline = building / "pipeline"
    (pipeline / "data" / "extra").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(pipeline_source / name, pipeline / name)
    readme = pipeline_source / "data" / "extra" / "README.md"
    if readme.is_file():
        shutil.copy(readme, pipeline / "data" / "extra")
    write_params(Layout(pipeline), **params)  # committed: the new workspace is clean
    (building / ".gitignore").write_text("/python\n", encoding="utf-8")
    git(building, "add", "-A")
    git(building, "commit", "-qm", "pipeline workspace")
    if root.exists():
        shutil.rmtree(root)
    building.rename(root)
