from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emily.cli import app
from emily.settings_doc import iter_settings, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_matches_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/configuration.md is stale: run `uv run emily config docs -o ../docs/configuration.md`"
    )


def test_every_setting_is_documented_and_unique() -> None:
    names = [env for env, _, _ in iter_settings()]
    assert len(names) == len(set(names))
    assert "EMILY_DATABASE__DSN" in names
    secrets = {env for env, _, secret in iter_settings() if secret}
    assert "EMILY_DATABASE__DSN" in secrets


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMILY_DATABASE__DSN", "postgresql://u:hunter2@h/db")
    result = CliRunner().invoke(app, ["--state-dir", str(tmp_path), "config", "show"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["state_dir"] == str(tmp_path.resolve())


def test_config_docs_cli_writes_file(tmp_path: Path) -> None:
    target = tmp_path / "conf.md"
    result = CliRunner().invoke(app, ["config", "docs", "-o", str(target)])
    assert result.exit_code == 0
    assert target.read_text(encoding="utf-8") == render_markdown()


def test_bad_setting_on_command_line_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--state-dir", str(tmp_path), "--log-format", "xml", "status"]
    )
    assert result.exit_code == 1
    assert "EMILY_LOG_FORMAT" in result.stderr
