"""``emily infer`` and ``emily doctor`` end to end against the session llama-server."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from emily.cli import app
from emily.inference.hardware import rules_json
from tests.fixtures.llm import LlmServer


def _run(server: LlmServer, *args: str) -> tuple[int, str, str]:
    # The CPU may be shared: a generous deadline, never asserted upon.
    result = CliRunner().invoke(
        app,
        ["--state-dir", str(server.settings.state_dir), *args],
        env={"EMILY_INFERENCE__DEADLINE_S": "240"},
    )
    return result.exit_code, result.stdout, result.stderr


def test_infer_chat_plain_and_json(llm_server: LlmServer) -> None:
    code, out, err = _run(llm_server, "infer", "chat", "Say hi.", "--max-tokens", "4")
    assert code == 0, err
    assert "local · smollm2-135m-instruct" in out
    code, out, _ = _run(
        llm_server, "infer", "chat", "Say hi.", "--max-tokens", "4", "--json", "--no-stream"
    )
    payload = json.loads(out)
    assert payload["backend"] == "local" and payload["usage"]["completion_tokens"] <= 4


def test_infer_chat_with_schema_file(llm_server: LlmServer, tmp_path: Path) -> None:
    schema = tmp_path / "answer.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 20},
                    "sunny": {"type": "boolean"},
                    "mood": {"enum": ["calm", "busy"]},
                },
                "required": ["city", "sunny", "mood"],
            }
        )
    )
    code, out, err = _run(
        llm_server, "infer", "chat", "Weather in Rome?", "--schema", str(schema), "--system", "JSON"
    )
    assert code == 0, err
    value = json.loads(out[: out.rindex("}") + 1])
    assert isinstance(value["sunny"], bool) and value["mood"] in ("calm", "busy")


def test_infer_chat_bad_schema_and_backend_are_one_line_errors(
    llm_server: LlmServer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = _run(llm_server, "infer", "chat", "x", "--schema", str(broken))
    assert code == 1 and "cannot read JSON schema" in err
    code, _, err = _run(llm_server, "infer", "chat", "x", "--backend", "nope")
    assert code == 1 and "unknown backend" in err
    code, _, err = _run(llm_server, "infer", "bench", "--json", "x.json", "--concurrency", "a")
    assert code == 1 and "comma-separated" in err


def test_bench_writes_json(llm_server: LlmServer, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code, stdout, err = _run(
        llm_server,
        "infer",
        "bench",
        "--url",
        llm_server.base_url,
        "--concurrency",
        "2",
        "--requests",
        "2",
        "--prompt-tokens",
        "40",
        "--max-tokens",
        "4",
        "--structured",
        "1",
        "--structured-max-tokens",
        "40",
        "--json",
        str(out),
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [row["concurrency"] for row in rows] == [2]
    for row in rows:
        # Connection resets under CPU contention count as errors; most requests must succeed.
        assert row["kind"] == "llama-cpp" and row["errors"] < row["requests"]
        assert row["ttft_ms"]["p50"] is not None
        assert row["client_overhead_ms"]["p95"] is not None
        assert row["structured"]["requests"] == 1
        # Calibration aims at 40 prompt tokens; the chat template makes it approximate.
        assert 20 <= row["prompt_tokens"]["p50"] <= 80
    assert "wrote" in stdout


def test_serve_is_idempotent_with_up(llm_server: LlmServer) -> None:
    code, out, err = _run(llm_server, "infer", "serve")
    assert code == 0, err
    assert f"pid {llm_server.pid}" in out


def test_doctor_reports_machine_and_rules(llm_server: LlmServer) -> None:
    code, out, err = _run(llm_server, "doctor", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["llama_server"]["ok"] and report["model"]["ok"]
    assert {v["backend"] for v in report["backends"]} == {"sglang", "llama-cpp"}
    assert report["inference_health"] == {"local": True}
    assert report["inference_key_accepted"] == {"local": True}  # doctor sends the local key
    llm = next(s for s in report["services"] if s["name"] == "llm")
    assert llm["healthy"]
    code, out, _ = _run(llm_server, "doctor")
    assert code == 0 and "llama-cpp" in out
    assert "inference backend local (key accepted)" in out
    code, out, _ = _run(llm_server, "doctor", "--rules-json")
    assert code == 0 and out == rules_json()


def test_doctor_reports_a_refused_key(llm_server: LlmServer) -> None:
    backends = [{"name": "wrong", "base_url": llm_server.base_url, "api_key": "not-the-key"}]
    result = CliRunner().invoke(
        app,
        ["--state-dir", str(llm_server.settings.state_dir), "doctor", "--json"],
        env={"EMILY_INFERENCE__BACKENDS": json.dumps(backends)},
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inference_health"] == {"wrong": True}  # /health is public
    assert report["inference_key_accepted"] == {"wrong": False}
    assert "not-the-key" not in result.stdout
