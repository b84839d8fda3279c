"""DVC from our code: the remote (a directory under the state dir by default, S3/MinIO by URL
in settings), ``repro`` with progress, ``push``/``pull``, and reading versioned data through
``dvc.api``. DVC runs as a subprocess of this interpreter (``python -m dvc``), so its stages use
the same environment and settings (the state directory travels in ``EMILY_STATE_DIR``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emily.errors import EmilyError
from emily.mlops.pipeline.layout import Layout

if TYPE_CHECKING:
    from emily.config import Settings

REMOTE = "emily"
STAGES = ("prepare", "validate", "embed", "drift", "train", "evaluate")
_RUNNING = re.compile(r"Running stage '([^']+)'|Stage '([^']+)' didn't change")


class PipelineError(EmilyError):
    """DVC could not run, push or pull the pipeline."""


def remote_url(settings: Settings) -> str:
    configured = settings.mlops.dvc_remote_url
    return configured if configured else str(settings.state_dir / "dvc-remote")


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["EMILY_STATE_DIR"] = str(settings.state_dir)
    # The stages' `python` must be this interpreter (the locked environment).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def dvc(
    settings: Settings,
    layout: Layout,
    *args: str,
    on_line: Callable[[str], None] | None = None,
    what: str | None = None,
) -> str:
    """Run ``dvc <args>`` in the pipeline directory; output lines go to ``on_line``."""
    command = [sys.executable, "-m", "dvc", *args]
    process = subprocess.Popen(
        command,
        cwd=layout.root,
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if on_line is not None:
            on_line(lines[-1])
    code = process.wait()
    output = "\n".join(lines)
    if code != 0:
        # Our stages print "error: <stage>: <message>"; that line is the reason.
        errors = [ln for ln in lines if ln.startswith("error: ")]
        text = errors[-1] if errors else (lines[-1] if lines else "no output")
        raise PipelineError(
            f"`dvc {' '.join(args)}` failed: {text.removeprefix('error: ')}",
            field=what,
            hint=f"see `dvc {args[0]}` output in {layout.root}",
        )
    return output


def ensure_remote(settings: Settings, layout: Layout) -> str:
    """Make the configured remote the default (in ``.dvc/config.local``, never committed)."""
    url = remote_url(settings)
    if "://" not in url:
        Path(url).mkdir(parents=True, exist_ok=True, mode=0o700)
    dvc(settings, layout, "remote", "add", "--local", "--force", "--default", REMOTE, url)
    return url


def repro(
    settings: Settings,
    layout: Layout,
    on_stage: Callable[[str], None] | None = None,
    *,
    force_from: str | None = None,
) -> str:
    """``dvc repro``; ``force_from``: run that stage again even when DVC considers it up to
    date (and never from the run cache), then whatever depends on it."""

    def watch(line: str) -> None:
        match = _RUNNING.search(line)
        if match and on_stage is not None:
            on_stage(match.group(1) or match.group(2))

    output = ""
    if force_from:
        forced = ["--force", "--single-item", "--no-run-cache", force_from]
        output = dvc(
            settings, layout, "repro", *forced, on_line=watch, what=f"dvc repro {force_from}"
        )
    return output + dvc(settings, layout, "repro", on_line=watch, what="dvc repro")


def out_of_date(settings: Settings, layout: Layout) -> bool:
    """Whether ``dvc repro`` has work to do (``dvc status``: a changed dependency, parameter or
    missing output), e.g. after a run that was interrupted or failed midway."""
    output = dvc(settings, layout, "status", "--json", what="dvc status")
    start = output.find("{")
    try:
        changes = json.loads(output[start:]) if start >= 0 else {}
    except ValueError as exc:
        raise PipelineError(f"`dvc status --json` printed no JSON: {output[-200:]}") from exc
    return bool(changes)


def push(settings: Settings, layout: Layout) -> str:
    ensure_remote(settings, layout)
    return dvc(settings, layout, "push", what="dvc push")


def pull(settings: Settings, layout: Layout) -> str:
    ensure_remote(settings, layout)
    return dvc(settings, layout, "pull", what="dvc pull")


def data_url(layout: Layout, path: Path) -> str:
    """Where DVC stores ``path`` in the default remote (``dvc.api.get_url``)."""
    import dvc.api

    try:
        # dvc.api resolves the path against the working directory, whatever `repo` says.
        with contextlib.chdir(layout.repo_root):
            return str(dvc.api.get_url(layout.relative(path), repo=str(layout.repo_root)))
    except Exception as exc:
        raise PipelineError(f"DVC cannot locate {path}: {exc}", field=str(path)) from exc


def read_versioned(layout: Layout, path: Path, rev: str | None = None) -> bytes:
    """The bytes of a DVC-tracked file at git revision ``rev`` (default: the workspace)."""
    import dvc.api

    try:
        with (
            contextlib.chdir(layout.repo_root),
            dvc.api.open(
                layout.relative(path), repo=str(layout.repo_root), rev=rev, mode="rb"
            ) as handle,
        ):
            data: bytes = handle.read()
            return data
    except Exception as exc:
        raise PipelineError(f"DVC cannot read {path} at {rev or 'workspace'}: {exc}") from exc
