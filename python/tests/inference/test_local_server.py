"""The llm stack service: clear errors before any process starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from emily.errors import BinaryNotFoundError, ConfigError, PortInUseError
from emily.stack.llama_binaries import find_model, find_server_bin, shipped_model
from emily.stack.manager import Stack
from tests.conftest import make_settings


def test_missing_binary_says_how_to_build(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "s", inference={"server": {"server_bin": str(tmp_path / "nope")}}
    )
    with pytest.raises(BinaryNotFoundError, match="make setup"):
        Stack(settings).up(["llm"])
    empty_cache = make_settings(tmp_path / "s", cache_dir=tmp_path / "cache")
    monkey_path = pytest.MonkeyPatch()
    monkey_path.setenv("PATH", str(tmp_path))
    try:
        with pytest.raises(BinaryNotFoundError, match="not built"):
            find_server_bin(empty_cache)
    finally:
        monkey_path.undo()


def test_missing_model_is_config_error(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "s", inference={"server": {"model_path": str(tmp_path / "x.gguf")}}
    )
    with pytest.raises(ConfigError, match=r"x\.gguf"):
        Stack(settings).up(["llm"])
    shipped = shipped_model()
    assert shipped is not None and find_model(make_settings(tmp_path / "s")) == shipped


def test_port_taken(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        settings = make_settings(tmp_path / "s", inference={"server": {"port": port}})
        with pytest.raises(PortInUseError, match=str(port)):
            Stack(settings).up(["llm"])


def test_bad_settings_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unique"):
        make_settings(tmp_path / "s", inference={"backends": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match="http"):
        make_settings(tmp_path / "s", inference={"backends": [{"base_url": "ftp://x"}]})
