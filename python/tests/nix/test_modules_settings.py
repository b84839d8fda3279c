"""The NixOS modules speak the Python settings' language.

Every ``EMILY_*`` variable the modules set or render must be a real field of
``emily.config.Settings``; secret fields travel only as ``*_FILE`` credentials; the settings
the modules and the host write must validate; every ``emily ...`` command line the units and
VM tests run must exist in our CLI. The renderer is the real one (nix/lib/env.nix, evaluated
with nix-instantiate), and pydantic-settings reads its output, so a drift on either side fails.
"""

from __future__ import annotations

import tarfile
import types
import typing
from pathlib import Path

import pytest
import typer.main
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from emily.cli.app import app
from emily.config import ENV_PREFIX, NESTED_DELIMITER, Settings, load_settings
from tests.nix.nixsrc import (
    ROOT,
    collect,
    lib_expr,
    nix_attrset,
    nix_eval,
    nix_eval_file,
    nix_files,
    parse,
    snapshots_dir,
)

# Settings a production deployment must provide, and the module that provides each.
MUST_SET = {
    "database.dsn": "memory.nix",
    "database.admin_dsn": "memory.nix",
    "redis.url": "features.nix",
}

FACTS = collect()


def _submodel(annotation: object) -> type[BaseModel] | None:
    """The model behind ``M`` or ``M | None``; lists of models are leaves (set as JSON)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    candidates = typing.get_args(annotation) if union else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def field_at(path: tuple[str, ...]) -> FieldInfo | None:
    model: type[BaseModel] = Settings
    info: FieldInfo | None = None
    for depth, part in enumerate(path):
        info = model.model_fields.get(part)
        if info is None:
            return None
        sub = _submodel(info.annotation)
        if depth < len(path) - 1:
            if sub is None:
                return None
            model = sub
    return info


def leaf_paths(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        sub = _submodel(info.annotation)
        if sub is not None and not _is_secret(info):
            paths.extend(leaf_paths(sub, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def _is_secret(info: FieldInfo) -> bool:
    return SecretStr in (typing.get_args(info.annotation) or (info.annotation,))


def _holds_secret(info: FieldInfo) -> bool:
    """A secret, or a list of models with a secret field (``inference.backends[].api_key``)."""
    if _is_secret(info):
        return True
    if typing.get_origin(info.annotation) is list:
        (item,) = typing.get_args(info.annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return any(_is_secret(f) for f in item.model_fields.values())
    return False


def env_to_path(name: str) -> tuple[str, ...]:
    assert name.startswith(ENV_PREFIX), name
    return tuple(name[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER))


def _where(file: Path) -> str:
    return str(file.relative_to(ROOT))


def test_every_nix_file_parses_with_tree_sitter() -> None:
    files = [
        *nix_files(),
        *sorted((ROOT / "nix").rglob("*.nix")),
        *sorted((ROOT / "pkgs").glob("*.nix")),
    ]
    assert len(files) >= 20
    for file in files:
        parse(file)


def test_modules_assign_settings() -> None:
    # Guards the collector itself: if it silently found nothing, the checks below would pass.
    paths = {a.path for a in FACTS.settings}
    assert ("database", "app_role") in paths
    assert ("database", "hnsw_m") in paths  # from the host
    assert {a.path[0] for a in FACTS.secrets} >= set(MUST_SET)


def test_settings_assigned_by_modules_are_real_fields() -> None:
    bad = [
        f"{_where(a.file)}: {'.'.join(a.path)}" for a in FACTS.settings if field_at(a.path) is None
    ]
    assert not bad, f"services.emily.settings paths that Settings does not have: {bad}"


def test_settings_read_by_modules_are_real_fields() -> None:
    assert FACTS.settings_reads, "collector found no emily.settings reads"
    bad = [f"{_where(f)}: {'.'.join(p)}" for f, p in FACTS.settings_reads if field_at(p) is None]
    assert not bad, bad


def test_literal_env_names_are_real_settings() -> None:
    names = {(f, n) for f, n in FACTS.env_names}
    assert any(n == "EMILY_ENVIRONMENT" for _, n in names)
    bad = []
    for file, name in sorted(names):
        target = name.removesuffix("_FILE")
        info = field_at(env_to_path(target))
        if info is None:
            bad.append(f"{_where(file)}: {name}")
        elif _is_secret(info) and not name.endswith("_FILE"):
            bad.append(f"{_where(file)}: {name} is a secret and must be passed as {target}_FILE")
    assert not bad, bad


def test_renderer_output_names_are_real_settings() -> None:
    """Render every settings path the modules assign with the real Nix renderer."""
    paths = sorted({a.path for a in FACTS.settings})
    rendered = nix_eval(lib_expr(f"env.toEnv {nix_attrset(paths)}"))
    assert isinstance(rendered, dict)
    assert len(rendered) == len(paths)
    for name in rendered:
        assert field_at(env_to_path(name)) is not None, name


def test_secret_paths_match_secret_fields() -> None:
    declared = nix_eval(lib_expr("env.secretPaths"))
    credentials = nix_eval(lib_expr("env.credentialPaths"))
    assert isinstance(declared, list) and isinstance(credentials, list)
    fields = {".".join(p): info for p in leaf_paths() if (info := field_at(p)) is not None}
    assert set(declared) == {p for p, info in fields.items() if _is_secret(info)}
    assert set(credentials) == {p for p, info in fields.items() if _holds_secret(info)}


def test_secrets_are_never_plain_settings() -> None:
    plain = [
        f"{_where(a.file)}: {'.'.join(a.path)}"
        for a in FACTS.settings
        if (info := field_at(a.path)) is not None and _is_secret(info)
    ]
    assert not plain, plain


def test_secrets_set_by_modules_are_secret_fields() -> None:
    for assignment in FACTS.secrets:
        (dotted,) = assignment.path
        info = field_at(tuple(dotted.split(".")))
        assert info is not None and _holds_secret(info), f"{_where(assignment.file)}: {dotted}"


def test_must_set_settings_have_module_sources() -> None:
    by_path = {a.path[0]: a.file.name for a in FACTS.secrets}
    for dotted, module in MUST_SET.items():
        assert by_path.get(dotted) == module, f"{dotted} should be provided by modules/{module}"
    required = [".".join(p) for p in leaf_paths() if (i := field_at(p)) and i.is_required()]
    covered = {".".join(a.path) for a in FACTS.settings} | {a.path[0] for a in FACTS.secrets}
    assert set(required) <= covered, f"required settings without a module source: {required}"
    assert ("secrets",) in FACTS.options and ("settings",) in FACTS.options


def test_rendered_settings_load_into_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nix renders, pydantic-settings reads: values and nesting survive the trip."""
    expr = (
        '{ log_level = "debug"; environment = "production";'
        ' database = { hnsw_m = 24; ef_search = 100; embedding_storage = "vector";'
        " slow_query_ms = 12.5; }; embedder.threads = 3; }"
    )
    env = nix_eval(lib_expr(f"env.toEnv {expr}"))
    assert isinstance(env, dict)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(state_dir=tmp_path)
    assert settings.log_level == "debug"
    assert settings.environment == "production"
    assert settings.database.hnsw_m == 24
    assert settings.database.ef_search == 100
    assert settings.database.embedding_storage == "vector"
    assert settings.database.slow_query_ms == 12.5
    assert settings.embedder.threads == 3


def test_credentials_reach_secret_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """secretEnv + LoadCredential, with %d standing in for $CREDENTIALS_DIRECTORY."""
    secrets = {"database.dsn": "/run/agenix/dsn", "redis.url": "/run/agenix/redis"}
    files = {
        "database.dsn": "postgresql://app:s3cret@db/emily",
        "redis.url": "redis://:pw@r:6379/0",
    }
    expr = "{ " + " ".join(f'"{k}" = "{v}";' for k, v in secrets.items()) + " }"
    env = nix_eval(lib_expr(f"env.secretEnv {expr}"))
    creds = nix_eval(lib_expr(f"env.loadCredential {expr}"))
    assert isinstance(env, dict) and isinstance(creds, list)
    ids = dict(entry.split(":", 1) for entry in creds)
    assert set(ids.values()) == set(secrets.values())
    for credential_id, host_path in ids.items():
        dotted = next(k for k, v in secrets.items() if v == host_path)
        (tmp_path / credential_id).write_text(files[dotted] + "\n")
    for name, value in env.items():
        assert value.startswith("%d/"), value
        monkeypatch.setenv(name, str(tmp_path / value.removeprefix("%d/")))
    settings = load_settings(state_dir=tmp_path / "state")
    assert settings.database.dsn is not None and settings.redis.url is not None
    assert settings.database.dsn.get_secret_value() == files["database.dsn"]
    assert settings.redis.url.get_secret_value() == files["redis.url"]


def test_host_settings_validate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The c220g5 host's literal settings block, evaluated, rendered and loaded."""
    host = parse(ROOT / "hosts" / "c220g5.nix")
    blocks = [
        b for b in _bindings(host) if _attrpath_text(b) == "settings" and _in_services_emily(b)
    ]
    assert len(blocks) == 1
    value = blocks[0].child_by_field_name("expression")
    assert value is not None and value.text is not None
    env = nix_eval(lib_expr(f"env.toEnv ({value.text.decode()})"))
    assert isinstance(env, dict) and env
    for name, rendered in env.items():
        monkeypatch.setenv(name, rendered)
    settings = load_settings(state_dir=tmp_path)
    assert settings.database.hnsw_m == int(env["EMILY_DATABASE__HNSW_M"])


def _bindings(node: typing.Any) -> list[typing.Any]:
    found = [node] if node.type == "binding" else []
    for child in node.children:
        found.extend(_bindings(child))
    return found


def _attrpath_text(binding: typing.Any) -> str:
    attrpath = binding.child_by_field_name("attrpath")
    return attrpath.text.decode() if attrpath is not None and attrpath.text else ""


def _in_services_emily(binding: typing.Any) -> bool:
    node = binding.parent
    while node is not None:
        if node.type == "binding" and _attrpath_text(node) == "services.emily":
            return True
        node = node.parent
    return False


def _is_group(command: typing.Any) -> bool:
    # Typer vendors its own click, so isinstance(click.Group) does not hold.
    return isinstance(getattr(command, "commands", None), dict)


def _resolve(group: typing.Any, tokens: list[str]) -> tuple[typing.Any, list[str]]:
    command = group
    rest = list(tokens)
    while _is_group(command) and rest and not rest[0].startswith("-"):
        sub = command.get_command(None, rest[0])  # the root loads its groups on demand
        if sub is None:
            break
        command, rest = sub, rest[1:]
    return command, rest


def test_cli_lines_in_units_and_vm_tests_exist() -> None:
    """`emily memory migrate`, `emily doctor --json`, ... resolve to real commands and options."""
    root = typer.main.get_command(app)
    lines = [(f, line) for f, line in FACTS.cli_lines if not line.startswith("Sovereign")]
    # The units' own command lines (through `${lib.getExe emily.package}`), not just prose.
    units = {line.split()[0] + " " + line.split()[1] for _, line in FACTS.exe_lines}
    assert {"memory migrate", "memory maintain", "memory backup", "agents serve"} <= units, units
    bad = []
    for file, line in lines:
        tokens = line.split()
        command, rest = _resolve(root, tokens)
        if command is root or _is_group(command):
            bad.append(f"{_where(file)}: emily {line}: no such command")
            continue
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        unknown = [
            t.split("=")[0] for t in rest if t.startswith("--") and t.split("=")[0] not in known
        ]
        if unknown:
            bad.append(f"{_where(file)}: emily {line}: unknown options {unknown}")
    assert not bad, bad


# Plausible contents for the credential files systemd would hand the units.
_CREDENTIAL_VALUES = {
    "database-dsn": "postgresql:///emily?host=/run/postgresql&user=emily_app",
    "database-admin_dsn": "postgresql:///emily?host=/run/postgresql&user=emily",
    "redis-url": "unix:///run/redis-emily/redis.sock?db=0",
}


@pytest.fixture(scope="module")
def host_units(tmp_path_factory: pytest.TempPathFactory) -> dict[str, typing.Any]:
    """nix/checks/host-env.nix over the real nixpkgs lib, uv2nix and pyproject.nix snapshots."""
    snapshots = snapshots_dir()
    if snapshots is None:
        pytest.skip("no source snapshots at ../shared/nix-inputs (CI has them)")
    unpacked = tmp_path_factory.mktemp("nix-inputs")
    for archive in sorted(snapshots.glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    result = nix_eval_file(ROOT / "nix" / "checks" / "host-env.nix", inputsDir=str(unpacked))
    assert isinstance(result, dict)
    return result


def test_evaluated_host_units_load_into_settings(
    host_units: dict[str, typing.Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each Emily unit of the evaluated c220g5 host starts with an environment Settings accepts.

    The host is evaluated by the real lib.evalModules (module defaults, mkDefault chains and the
    host's own values all merged), then every unit's EMILY_* environment, with its credentials
    as files under a stand-in $CREDENTIALS_DIRECTORY, is loaded by pydantic-settings.
    """
    units = host_units["units"]
    assert {"emily-agents", "emily-memory-migrate", "emily-memory-backup"} <= set(units), set(units)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for credential in host_units["credentials"]:
        (credentials / credential).write_text(_CREDENTIAL_VALUES.get(credential, "test-secret"))
    for unit, environment in sorted(units.items()):
        with monkeypatch.context() as patch:
            for name, value in environment.items():
                if name in {"EMILY_STATE_DIR", "EMILY_CACHE_DIR"}:
                    assert value.startswith(("/var/lib/emily/", "/var/cache/emily/")), value
                    continue
                if value.startswith("%d/"):
                    value = str(credentials / value.removeprefix("%d/"))
                patch.setenv(name, value)
            settings = load_settings(state_dir=tmp_path / unit)
        assert settings.environment == "production", unit
        assert settings.database.hnsw_m == 24, unit
        assert settings.database.dsn is not None, unit
