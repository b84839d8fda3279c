"""``emily mlops eval-cognition``: the cognition layer under one prompt version, scored by
``mlflow.genai.evaluate`` over a fixed, versioned set of stimuli (``data/cognition_stimuli.jsonl``;
its version is the SHA-256 of the file).

Each stimulus runs one full turn (fresh thread, no episodic memory, word-list appraisal, so
only the prompt and the LLM vary between evaluations); the turn's outputs are then scored by
code scorers:

* ``valid_output``: the LLM answered with structured output the loop accepted;
* ``policies_exist``: every policy it proposed exists in the generative model (``world.POLICIES``);
* ``deadline_met``: the whole turn finished inside the loop deadline;
* ``agrees_with_efe``: the LLM's most confident policy is the one the workspace chose by
  expected free energy.

The evaluation is one MLflow run per prompt version (tagged with the prompt URI and the
stimulus-set version), so versions compare side by side in the MLflow UI; the same numbers come
back as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emily.agents.loop import Agent, TurnResult
from emily.agents.perception import Stimulus
from emily.agents.prompt_registry import RegistryPrompt
from emily.agents.world import POLICIES
from emily.config import Settings
from emily.errors import EmilyError
from emily.telemetry.logs import get_logger

log = get_logger("agents.evaluation")
STIMULI = Path(__file__).with_name("data") / "cognition_stimuli.jsonl"
EXPERIMENT = "emily-cognition-eval"


class EvaluationError(EmilyError):
    """The evaluation cannot run (no such prompt, no stimuli, no MLflow)."""


@dataclass(frozen=True)
class StimulusSet:
    version: str
    items: list[dict[str, str]]


def load_stimuli(path: Path = STIMULI) -> StimulusSet:
    raw = path.read_bytes()
    items = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    for number, item in enumerate(items, 1):
        if not isinstance(item.get("text"), str) or not item.get("id"):
            raise EvaluationError(f"{path.name} line {number}: needs 'id' and 'text'", field="text")
    return StimulusSet(version=hashlib.sha256(raw).hexdigest()[:12], items=items)


def turn_outputs(result: TurnResult, deadline_s: float) -> dict[str, Any]:
    """What the scorers see of one turn."""
    proposed = [p for p in result.proposals if p.get("layer") == "cognition"]
    preferred = max(proposed, key=lambda p: float(p.get("confidence", 0.0)), default=None)
    notes = (result.degraded_reason or "").split("; ") if result.degraded_reason else []
    failed = [n for n in notes if n.startswith("cognition:")]
    return {
        "valid": result.prompt is not None and bool(proposed) and not failed,
        "llm_policies": [str(p.get("policy")) for p in proposed],
        "llm_preferred": None if preferred is None else str(preferred.get("policy")),
        "policy": result.policy,
        "layer": result.layer,
        "latency_ms": result.latency_ms,
        "llm_ms": result.llm_ms,
        "deadline_ms": deadline_s * 1000,
        "prompt": result.prompt,
        "notes": notes,
    }


def valid_output(outputs: dict[str, Any]) -> bool:
    return bool(outputs["valid"])


def policies_exist(outputs: dict[str, Any]) -> bool:
    policies = outputs["llm_policies"]
    return bool(policies) and all(p in POLICIES for p in policies)


def deadline_met(outputs: dict[str, Any]) -> bool:
    return float(outputs["latency_ms"]) <= float(outputs["deadline_ms"])


def agrees_with_efe(outputs: dict[str, Any]) -> bool:
    return outputs["llm_preferred"] is not None and outputs["llm_preferred"] == outputs["policy"]


SCORERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "valid_output": valid_output,
    "policies_exist": policies_exist,
    "deadline_met": deadline_met,
    "agrees_with_efe": agrees_with_efe,
}


def _mlflow_scorers() -> list[Any]:
    from mlflow.genai.scorers import scorer

    return [scorer(fn, name=name) for name, fn in SCORERS.items()]


async def run_turns(
    settings: Settings,
    provider: RegistryPrompt,
    items: list[dict[str, str]],
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    cfg = settings.agents.model_copy(
        update={"memory_enabled": False, "appraiser": "words", "cognition_enabled": True}
    )
    agent = await Agent.open(
        settings.model_copy(update={"agents": cfg}), durable=False, prompt=provider
    )
    outputs = []
    try:
        for item in items:
            result = await agent.step(f"eval-cognition-{item['id']}", Stimulus(text=item["text"]))
            outputs.append(turn_outputs(result, cfg.loop_deadline_s))
            if progress is not None:
                progress(1)
    finally:
        await agent.close()
    return outputs


def evaluate_cognition(
    settings: Settings,
    *,
    alias: str | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the stimuli under the prompt ``alias`` names and score them in MLflow."""
    from emily.mlops.tracking import connect

    client = connect(settings)  # fails fast, in one line, when MLflow is down
    wanted = alias or settings.mlops.prompt_alias
    provider = RegistryPrompt(settings, alias=wanted)
    if not provider.refresh():
        raise EvaluationError(
            f"cannot load prompt {settings.mlops.prompt_name}@{wanted} ({provider.error})",
            field="prompt_alias",
            hint="`emily up` registers the built-in prompt as 'production'",
        )
    prompt = provider()
    stimuli = load_stimuli()
    items = stimuli.items[:limit] if limit else stimuli.items
    outputs = asyncio.run(run_turns(settings, provider, items, progress))

    import mlflow
    import mlflow.genai

    # An experiment id for this run only: ``set_experiment`` would change the process-wide
    # active experiment under every later run of this process (training runs included).
    found = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = found.experiment_id if found else client.create_experiment(EXPERIMENT)
    tags = {
        "project": "emily-sovereign",
        "component": "cognition",
        "prompt_uri": prompt.version,
        "prompt_alias": wanted,
        "stimuli_version": stimuli.version,
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"eval-cognition {prompt.version}", tags=tags
    ) as run:
        mlflow.log_params(
            {
                "prompt_uri": prompt.version,
                "stimuli": len(items),
                "stimuli_version": stimuli.version,
            }
        )
        data = [
            {"inputs": {"text": item["text"], "id": item["id"]}, "outputs": out}
            for item, out in zip(items, outputs, strict=True)
        ]
        # MLflow prints its own summary on stdout; stdout is ours (the JSON), so it goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            result = mlflow.genai.evaluate(data=data, scorers=_mlflow_scorers())
    metrics = {k: float(v) for k, v in result.metrics.items()}
    log.info("cognition_evaluated", prompt=prompt.version, run_id=run.info.run_id, **metrics)
    return {
        "run_id": run.info.run_id,
        "experiment": EXPERIMENT,
        "prompt": prompt.version,
        "prompt_alias": wanted,
        "stimuli_version": stimuli.version,
        "stimuli": len(items),
        "metrics": metrics,
        "rows": [
            {
                "id": item["id"],
                "policy": out["policy"],
                "llm_preferred": out["llm_preferred"],
                "latency_ms": out["latency_ms"],
                **{name: fn(out) for name, fn in SCORERS.items()},
            }
            for item, out in zip(items, outputs, strict=True)
        ],
    }
