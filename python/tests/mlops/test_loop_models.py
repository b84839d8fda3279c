"""The registered models in the agent loop, on the real MLflow server: the champion appraises
each stimulus (the version recorded in the turn, its trace and its episode), a moved alias is
followed, MLflow down falls back to the anchor method with the reason; the cognition prompt is
read from the prompt registry by alias."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emily.agents.champion import ChampionAppraiser
from emily.agents.cognition import DEFAULT_PROMPT
from emily.agents.loop import Agent
from emily.agents.perception import Stimulus
from emily.agents.prompt_registry import RegistryPrompt
from emily.config import Settings
from emily.locator import postgres_dsn
from emily.memory.embedding.factory import create_embedder
from emily.memory.store import MemoryStore
from emily.mlops import lifecycle, prompts, registry
from emily.mlops.tracking import connect
from emily.provision import register_prompt
from tests.fixtures.pipeline import PipelineRepo, mlops_env

pytestmark = pytest.mark.timeout(1500)
TEXT = "I am grateful for this wonderful, happy day with friends."


@pytest.fixture(scope="module")
def embed(pipeline_repo: PipelineRepo) -> Any:
    embedder = create_embedder(pipeline_repo.settings)

    def vectors(texts: Any) -> np.ndarray[Any, Any]:
        return np.asarray(embedder.embed(list(texts)), dtype=np.float32)

    return vectors


def dead(settings: Settings) -> Settings:
    mlflow = settings.mlflow.model_copy(update={"tracking_uri": "http://127.0.0.1:9"})
    return settings.model_copy(update={"mlflow": mlflow})


def test_the_champion_appraises_and_names_its_version(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any], embed: Any
) -> None:
    settings = pipeline_repo.settings
    champion = registry.by_alias(connect(settings), settings.mlops.model_name, "champion")
    assert champion is not None
    appraiser = ChampionAppraiser(settings, embed)
    assert appraiser.refresh() and appraiser.error is None
    vector = embed([TEXT])[0]
    answer = appraiser(TEXT, list(vector))
    assert answer.source == f"{settings.mlops.model_name}/{champion.version}"
    assert answer.degraded is None
    expected, version = lifecycle.predict(settings, "@champion", [TEXT])
    assert version == champion.version
    assert answer.values["valence"] == pytest.approx(expected[0], abs=1e-4)
    assert answer.values["valence"] > 0


def test_a_moved_alias_is_followed(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any], embed: Any
) -> None:
    settings = pipeline_repo.settings
    client, name = connect(settings), settings.mlops.model_name
    before = registry.by_alias(client, name, "champion")
    assert before is not None
    other = next(
        int(v.version)
        for v in client.search_model_versions(f"name='{name}'")
        if int(v.version) != before.version
    )
    appraiser = ChampionAppraiser(settings, embed)
    assert appraiser.refresh() and appraiser.source == f"{name}/{before.version}"
    client.set_registered_model_alias(name, "champion", other)
    try:
        assert appraiser.refresh()
        assert appraiser.source == f"{name}/{other}"
        assert appraiser(TEXT, list(embed([TEXT])[0])).source == f"{name}/{other}"
    finally:
        client.set_registered_model_alias(name, "champion", before.version)


def test_mlflow_down_falls_back_to_the_anchor_method_with_the_reason(
    pipeline_repo: PipelineRepo, embed: Any
) -> None:
    appraiser = ChampionAppraiser(dead(pipeline_repo.settings), embed)
    assert not appraiser.refresh()
    answer = appraiser(TEXT, list(embed([TEXT])[0]))
    assert answer.source == "anchor"
    assert answer.degraded is not None and "champion unavailable" in answer.degraded
    assert -1.0 <= answer.values["valence"] <= 1.0
    # Without an embedding the anchor method cannot run: the word lists answer, still degraded.
    words = appraiser(TEXT, None)
    assert words.source == "words" and words.values == {} and words.degraded


async def test_a_turn_records_the_champion_in_state_trace_and_episode(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    base = pipeline_repo.settings
    MemoryStore(base).migrate()
    settings = base.model_copy(
        update={
            "agents": base.agents.model_copy(
                update={"appraiser": "champion", "cognition_enabled": False}
            )
        }
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = await Agent.open(settings, durable=False, tracer=provider.get_tracer("test"))
    try:
        appraiser = agent.appraiser
        assert isinstance(appraiser, ChampionAppraiser)
        assert appraiser.refresh()  # the background load may still be running: wait for it
        result = await agent.step("champion-turn", Stimulus(text=TEXT))
    finally:
        await agent.close()
    champion = registry.by_alias(connect(base), base.mlops.model_name, "champion")
    assert champion is not None
    source = f"{base.mlops.model_name}/{champion.version}"
    assert result.appraised_by == source
    assert "appraiser" not in (result.degraded_reason or "")
    span = next(s for s in exporter.get_finished_spans() if s.name == "agents.turn")
    assert span.attributes is not None and span.attributes["emily.appraised_by"] == source
    assert result.episode_id is not None
    with psycopg.connect(postgres_dsn(base)) as conn:
        row = conn.execute(
            "SELECT context->>'appraised_by' FROM episodic_memories WHERE id = %s",
            (result.episode_id,),
        ).fetchone()
    assert row == (source,)


def test_the_prompt_is_registered_once_and_read_by_alias(pipeline_repo: PipelineRepo) -> None:
    settings = pipeline_repo.settings
    first = register_prompt(settings)
    again = register_prompt(settings)
    assert "already registered" in again and first.split(": ")[-1] == again.split(": ")[-1]
    loaded = prompts.load(settings)
    assert (loaded.system, loaded.user) == (DEFAULT_PROMPT.system, DEFAULT_PROMPT.user)
    provider = RegistryPrompt(settings)
    assert provider() is DEFAULT_PROMPT  # nothing loaded yet: the built-in text answers
    assert provider.refresh() and provider().version == loaded.uri
    # A new text under another alias: the provider of that alias follows it.
    new, created = prompts.register(
        settings, system=DEFAULT_PROMPT.system + " Be brief.", user=DEFAULT_PROMPT.user
    )
    assert created and new.version > loaded.version
    prompts.set_alias(settings, "candidate", new.version)
    candidate = RegistryPrompt(settings, alias="candidate")
    assert candidate.refresh() and candidate().system.endswith("Be brief.")
    assert prompts.load(settings).version == loaded.version  # production did not move


def test_a_registry_that_is_down_keeps_the_builtin_prompt(pipeline_repo: PipelineRepo) -> None:
    provider = RegistryPrompt(dead(pipeline_repo.settings))
    assert not provider.refresh()
    assert provider() is DEFAULT_PROMPT and provider.error


def test_the_demo_reuses_the_champion_and_labels_valence_with_it(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any], embed: Any
) -> None:
    from rich.console import Console

    from emily.demo.champion import ensure_champion
    from emily.demo.corpus import DERIVED
    from emily.demo.runner import corpus_path, label_notes, load_corpus

    settings = pipeline_repo.settings
    console = Console(file=io.StringIO(), width=80)
    problems: list[str] = []
    champion = ensure_champion(settings, console, problems, train=False, embed=embed)
    assert champion is not None and problems == []
    assert champion.source.startswith(f"{settings.mlops.model_name}/")
    corpus_path(settings, 40).unlink(missing_ok=True)
    corpus = load_corpus(settings, 40, 30, console, embed, champion)
    labels = corpus[0]["context"]["labels"]
    assert labels["valence"] == f"{champion.source} (trained on human ratings)"
    assert labels["arousal"] == labels["dominance"] == DERIVED
    texts = [e["content"] for e in corpus]
    expected, _ = champion.appraise_many(texts, np.asarray([e["embedding"] for e in corpus]))
    assert [e["affect"][0] for e in corpus] == pytest.approx(list(expected), abs=1e-3)
    assert "trained on human ratings" in label_notes(corpus, [])[0]
    # Cached and labelled otherwise (no champion): relabelled as derived from its embeddings.
    derived = load_corpus(settings, 40, 30, console, embed, None)
    assert derived[0]["context"]["labels"]["valence"] == DERIVED
    assert [e["content"] for e in derived] == texts


def test_the_demo_without_a_champion_says_so(pipeline_repo: PipelineRepo, embed: Any) -> None:
    from rich.console import Console

    from emily.demo.champion import ensure_champion

    settings = pipeline_repo.settings
    other = settings.model_copy(
        update={"mlops": settings.mlops.model_copy(update={"model_name": "emily-no-such-model"})}
    )
    problems: list[str] = []
    console = Console(file=io.StringIO(), width=80)
    assert ensure_champion(other, console, problems, train=False, embed=embed) is None
    assert problems and "no emily-no-such-model@champion" in problems[0]
    assert ensure_champion(dead(settings), console, problems, train=True, embed=embed) is None
    assert "MLflow" in problems[-1]


async def test_threads_are_split_between_champion_and_challenger_and_reported(
    pipeline_repo: PipelineRepo,
    weak_champion: dict[str, Any],
    strong_challenger: dict[str, Any],
) -> None:
    """The A/B test in the loop: each thread sticks to the arm its hash gives, the arm's model
    appraises its turns, the arm and the outcome (error against the stimulus's human ratings)
    are stored with the episode and set on the trace, and the report analyses them per thread."""
    from typer.testing import CliRunner

    from emily.agents.ab import experiment_name
    from emily.cli.app import app
    from emily.mlops.abtest.assignment import assign_arm
    from emily.mlops.abtest.report import ab_report
    from emily.mlops.appraisal.lexicon import installed_lexicon, read_lexicon

    base = pipeline_repo.settings
    MemoryStore(base).migrate()
    client, name = connect(base), base.mlops.model_name
    before = {a: registry.by_alias(client, name, a) for a in ("champion", "challenger")}
    weak, strong = int(weak_champion["version"]), int(strong_challenger["version"])
    client.set_registered_model_alias(name, "champion", str(weak))
    client.set_registered_model_alias(name, "challenger", str(strong))
    settings = base.model_copy(
        update={
            "agents": base.agents.model_copy(
                update={
                    "appraiser": "champion",
                    "cognition_enabled": False,
                    "ab_challenger_share": 0.5,
                }
            )
        }
    )
    rated = [r for r in read_lexicon(installed_lexicon()) if r.kind == "word"][::97][:16]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = await Agent.open(settings, durable=False, tracer=provider.get_tracer("test"))
    # Eight threads, four per arm by the real hash (the experiment's name holds this session's
    # version numbers, so the split is found, not assumed).
    experiment = experiment_name(f"{name}/{weak}", f"{name}/{strong}")
    candidates = [f"ab-{i}" for i in range(200)]
    by_arm = {
        arm: [
            t
            for t in candidates
            if assign_arm(t, experiment=experiment, challenger_share=0.5) == arm
        ][:4]
        for arm in ("champion", "challenger")
    }
    threads = [*by_arm["champion"], *by_arm["challenger"]]
    try:
        assert agent.ab is not None
        assert agent.ab.champion.refresh() and agent.ab.challenger.refresh()
        results = []
        for index, row in enumerate(rated):
            thread = threads[index % len(threads)]
            stimulus = Stimulus(text=row.token, ratings=list(row.ratings))
            results.append((thread, row, await agent.step(thread, stimulus)))
    finally:
        await agent.close()
        for alias, info in before.items():
            if info is not None:
                client.set_registered_model_alias(name, alias, str(info.version))
            else:
                client.delete_registered_model_alias(name, alias)
    arms = {t: assign_arm(t, experiment=experiment, challenger_share=0.5) for t in threads}
    assert set(arms.values()) == {"champion", "challenger"}
    with psycopg.connect(postgres_dsn(base)) as conn:
        for thread, row, result in results:
            version = strong if arms[thread] == "challenger" else weak
            assert result.appraised_by == f"{name}/{version}"
            (context,) = conn.execute(
                "SELECT context FROM episodic_memories WHERE id = %s", (result.episode_id,)
            ).fetchone()
            assert (context["ab_experiment"], context["ab_arm"]) == (experiment, arms[thread])
            human = sum(row.ratings) / len(row.ratings) / 4.0
            assert context["human_valence"] == pytest.approx(human, abs=1e-6)
            assert context["appraisal_error"] == pytest.approx(
                abs(context["appraised_valence"] - human), abs=1e-5
            )
    spans = [s for s in exporter.get_finished_spans() if s.name == "agents.turn"]
    assert {s.attributes["emily.ab.arm"] for s in spans if s.attributes} == set(arms.values())

    result, context = ab_report(settings, experiment)
    assert context["threads"] == {
        arm: sum(1 for a in arms.values() if a == arm) for arm in ("champion", "challenger")
    }
    assert context["turns"]["champion"] + context["turns"]["challenger"] == len(rated)
    assert result.n_champion + result.n_challenger == len(threads)
    assert result.decision in ("promote", "keep", "inconclusive") and result.reason
    cli = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(base.state_dir),
            "mlops",
            "ab",
            "report",
            "--json",
            "--experiment",
            experiment,
        ],
        env=mlops_env(settings),
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["n_challenger"] == result.n_challenger
