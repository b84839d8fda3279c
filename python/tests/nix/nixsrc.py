"""Reads the Nix side with tree-sitter-nix and a bare ``nix-instantiate`` (no nixpkgs needed).

Collects, from the modules, host, flake and VM tests: every attribute path assigned under
``services.emily.settings`` / ``services.emily.secrets``, every ``emily.settings.*`` read, every
literal ``EMILY_*`` name, and every ``emily <command>`` line.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_nix
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[3]
LIB = ROOT / "nix" / "lib"
NIX_LANGUAGE = Language(tree_sitter_nix.language())

# Wrappers whose last argument is the value they set (lib.mkDefault x, lib.mkIf c x, ...).
_WRAPPERS = {"mkDefault", "mkForce", "mkIf", "mkOverride", "mkBefore", "mkAfter", "optionalAttrs"}
# `emily <subcommand> ...` as a command line (a subcommand is lowercase; `-d emily -tAc` is not).
_CLI_LINE = re.compile(r"(?:^|/bin/|[\s`(])emily((?:\s+[a-z][a-z-]*)(?:\s+[^\s\"'`;|&)]+)*)")
_ENV_NAME = re.compile(r"\bEMILY_[A-Z0-9_]+\b")
# `${lib.getExe emily.package} memory migrate`, `${emilyExe} ...`: the emily executable
# interpolated into a command line (the modules use lib.getExe, not "${pkg}/bin/emily").
_EMILY_EXE = re.compile(r"(?:lib\.)?getExe\s+[\w.]*package|emilyExe")


def nix_files() -> list[Path]:
    files = [
        *sorted((ROOT / "modules").glob("*.nix")),
        ROOT / "hosts" / "c220g5.nix",
        ROOT / "flake.nix",
        *sorted((ROOT / "tests" / "nixos").glob("*.nix")),
    ]
    return [f for f in files if f.is_file()]


# The tree-sitter-nix grammar on PyPI rejects a trailing comma after the last formal
# (`{ a, b, }:`), which Nix accepts and nixfmt writes; blank it out, keeping byte offsets.
_TRAILING_FORMAL_COMMA = re.compile(rb",(\s*\}\s*:)")


def parse(path: Path) -> Node:
    source = _TRAILING_FORMAL_COMMA.sub(rb" \1", path.read_bytes())
    tree = Parser(NIX_LANGUAGE).parse(source)
    assert not tree.root_node.has_error, f"{path}: tree-sitter-nix reports a syntax error"
    return tree.root_node


def _text(node: Node) -> str:
    return node.text.decode() if node.text is not None else ""


def _attr_names(attrpath: Node) -> list[str] | None:
    """Static names of an attrpath; None when a part is computed (``${x}``)."""
    names: list[str] = []
    for part in attrpath.children_by_field_name("attr"):
        if part.type == "identifier":
            names.append(_text(part))
        elif part.type == "string_expression" and all(
            c.type in {'"', "string_fragment"} for c in part.children
        ):
            names.append("".join(_text(c) for c in part.children if c.type == "string_fragment"))
        else:
            return None
    return names


def _unwrap(expr: Node) -> list[Node]:
    """The value expressions a binding really assigns, looking through wrappers and merges."""
    if expr.type == "parenthesized_expression":
        inner = expr.child_by_field_name("expression")
        return _unwrap(inner) if inner is not None else []
    if expr.type == "apply_expression":
        function = expr.child_by_field_name("function")
        argument = expr.child_by_field_name("argument")
        head = function
        while head is not None and head.type == "apply_expression":
            head = head.child_by_field_name("function")
        name = _text(head).rsplit(".", 1)[-1] if head is not None else ""
        if name in _WRAPPERS and argument is not None:
            return _unwrap(argument)
        if name == "mkMerge" and argument is not None and argument.type == "list_expression":
            return [n for el in argument.children_by_field_name("element") for n in _unwrap(el)]
        return [expr]
    if expr.type == "binary_expression" and _text(expr.child(1) or expr) == "//":
        left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
        return [n for side in (left, right) if side is not None for n in _unwrap(side)]
    return [expr]


@dataclass
class Assignment:
    file: Path
    path: tuple[str, ...]
    value: Node


@dataclass
class NixFacts:
    settings: list[Assignment] = field(default_factory=list)
    secrets: list[Assignment] = field(default_factory=list)
    settings_reads: list[tuple[Path, tuple[str, ...]]] = field(default_factory=list)
    env_names: list[tuple[Path, str]] = field(default_factory=list)
    cli_lines: list[tuple[Path, str]] = field(default_factory=list)
    # The subset run through the interpolated executable (units' ExecStart/scripts).
    exe_lines: list[tuple[Path, str]] = field(default_factory=list)
    options: set[tuple[str, ...]] = field(default_factory=set)


def _walk(node: Node, prefix: tuple[str, ...], file: Path, facts: NixFacts) -> None:
    if node.type == "binding":
        attrpath = node.child_by_field_name("attrpath")
        expr = node.child_by_field_name("expression")
        names = _attr_names(attrpath) if attrpath is not None else None
        if names is not None and expr is not None:
            facts.env_names.extend((file, n) for n in names if _ENV_NAME.fullmatch(n))
            path = prefix + tuple(names)
            _record(path, expr, file, facts)
            for value in _unwrap(expr):
                if value.type in {"attrset_expression", "rec_attrset_expression"}:
                    _walk(value, path, file, facts)
                else:
                    _walk(value, (), file, facts)
            return
    if node.type == "select_expression":
        target = node.child_by_field_name("expression")
        attrpath = node.child_by_field_name("attrpath")
        names = _attr_names(attrpath) if attrpath is not None else None
        # `emily.settings.x` / `config.services.emily.settings.x` reads.
        if target is not None and names:
            full = tuple(_text(target).split(".")) + tuple(names)
            for start in range(len(full) - 1):
                if full[start : start + 2] == ("emily", "settings") and len(full) > start + 2:
                    facts.settings_reads.append((file, full[start + 2 :]))
                    break
    if node.type in {"string_expression", "indented_string_expression"}:
        children = list(node.children)
        for here, after in itertools.pairwise(children):
            inner = here.child(1) if here.type == "interpolation" else None
            if (
                inner is not None
                and _EMILY_EXE.fullmatch(_text(inner))
                and after.type == "string_fragment"
            ):
                match = _CLI_LINE.match("emily" + _text(after))
                if match is not None:
                    line = (file, match.group(1).strip())
                    facts.cli_lines.append(line)
                    facts.exe_lines.append(line)
    if node.type == "string_fragment":
        text = _text(node)
        facts.env_names.extend((file, m) for m in _ENV_NAME.findall(text))
        facts.cli_lines.extend((file, m.group(1).strip()) for m in _CLI_LINE.finditer(text))
    for child in node.children:
        _walk(child, () if node.type == "binding" else prefix, file, facts)


def _record(path: tuple[str, ...], expr: Node, file: Path, facts: NixFacts) -> None:
    if path and path[0] == "config":
        path = path[1:]
    if path[:1] == ("options",) and path[1:3] == ("services", "emily"):
        facts.options.add(path[3:])
        return
    if path[:3] != ("services", "emily", "settings") and path[:3] != (
        "services",
        "emily",
        "secrets",
    ):
        return
    values = _unwrap(expr)
    # Only leaves: nested attrsets are walked and recorded binding by binding.
    if any(v.type in {"attrset_expression", "rec_attrset_expression"} for v in values):
        return
    target = facts.settings if path[2] == "settings" else facts.secrets
    target.append(Assignment(file, path[3:], expr))


def collect(files: list[Path] | None = None) -> NixFacts:
    facts = NixFacts()
    for file in files if files is not None else nix_files():
        _walk(parse(file), (), file, facts)
    return facts


def nix_eval(expression: str) -> object:
    """``nix-instantiate --eval --strict --json`` of a pure expression (builtins only)."""
    binary = shutil.which("nix-instantiate")
    assert binary is not None, "nix-instantiate missing: apt-get install nix-bin"
    result = subprocess.run(
        [binary, "--eval", "--strict", "--json", "-E", expression],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"nix-instantiate failed: {result.stderr}"
    return json.loads(result.stdout)


def snapshots_dir() -> Path | None:
    """../shared/nix-inputs (or $NIX_INPUTS_DIR) when it holds all four source snapshots."""
    folder = Path(os.environ.get("NIX_INPUTS_DIR", ROOT.parent / "shared" / "nix-inputs"))
    names = ("nixpkgs-lib", "pyproject-nix", "uv2nix", "build-system-pkgs")
    return folder if all((folder / f"{n}.tar.gz").is_file() for n in names) else None


def nix_eval_file(path: Path, **argstrs: str) -> object:
    """``nix-instantiate --eval --strict --json FILE --argstr k v ...``."""
    binary = shutil.which("nix-instantiate")
    assert binary is not None, "nix-instantiate missing: apt-get install nix-bin"
    args = [a for k, v in argstrs.items() for a in ("--argstr", k, v)]
    env = {**os.environ, "NIX_CONFIG": "build-users-group ="}
    env.setdefault("NIX_STATE_DIR", "/tmp/emily-nix-state")
    result = subprocess.run(
        [binary, "--eval", "--strict", "--json", str(path), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, f"nix-instantiate {path.name} failed: {result.stderr}"
    return json.loads(result.stdout)


def nix_string(value: str) -> str:
    return json.dumps(value).replace("${", "\\${")


def nix_attrset(paths: list[tuple[str, ...]], leaf: str = '"x"') -> str:
    """``{ "a"."b" = leaf; ... }`` for the given attribute paths."""
    body = " ".join(".".join(nix_string(p) for p in path) + f" = {leaf};" for path in paths)
    return "{ " + body + " }"


def lib_expr(attribute: str) -> str:
    return f"(import {LIB})." + attribute
