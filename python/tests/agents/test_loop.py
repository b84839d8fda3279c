from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from emily.agents import world
from emily.agents.cognition import DEFAULT_PROMPT, CognitionPrompt
from emily.agents.loop import Agent
from emily.agents.perception import Appraiser, Stimulus
from emily.agents.state import Action, CognitionOutput, Decision, HistoryEntry
from emily.agents.working_memory import WorkingMemory
from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.store import MemoryStore
from tests.agents.conftest import closed_port, llm_down, variant
from tests.fixtures.llm import LlmServer

NODES = {"perceive", "recall", "instinct", "affect", "cognition", "workspace", "act", "consolidate"}


async def test_full_loop_on_real_services(
    agents_settings: Settings, llm_server: LlmServer, endpoints: Endpoints, embedder: Any
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    thread = "loop-full"
    texts = [
        "A friend says hello and invites me to a party tonight.",
        "There is smoke and a fire alarm in the kitchen, danger!",
    ]
    # Turn 1 with the LLM; the rest without, in a second agent (as a new process would be):
    # generation on a shared 2-core machine takes tens of seconds per call.
    prompt = CognitionPrompt(
        system=DEFAULT_PROMPT.system, user=DEFAULT_PROMPT.user, version="test-prompt-7"
    )
    async with await Agent.open(
        agents_settings,
        tracer=provider.get_tracer("test"),
        embedder=embedder,
        prompt=lambda: prompt,
    ) as agent:
        first = await agent.step(thread, Stimulus(text=texts[0]))
        # The checkpoint holds the typed layer outputs, nothing else.
        values = (await agent.graph.aget_state(agent.config(thread))).values
    assert set(values["decision"]) == set(Decision.__annotations__)
    assert set(values["action"]) == set(Action.__annotations__)
    assert set(values["history"][0]) == set(HistoryEntry.__annotations__)
    assert values["cognition"] is None or set(values["cognition"]) == set(
        CognitionOutput.__annotations__
    )
    no_llm = variant(agents_settings, agents={"cognition_enabled": False})
    async with await Agent.open(
        no_llm, tracer=provider.get_tracer("test"), embedder=embedder
    ) as agent:
        second = await agent.step(thread, Stimulus(text=texts[1]))
    results = [first, second]
    assert (first.turn, second.turn) == (1, 2)
    assert {first.policy, second.policy} <= set(world.POLICIES)
    assert second.affect[0] < first.affect[0]  # the threat feels worse than the invitation
    assert first.appraisal, first.degraded_reason
    assert first.prompt == "test-prompt-7"
    assert any(p["layer"] == "cognition" for p in first.proposals)
    assert first.llm_ms is not None and first.llm_ms > 0
    assert not second.degraded  # cognition switched off is not a failure
    assert all(r.episode_id is not None for r in results)

    # Consolidated into episodic memory, with the decision as context.
    with MemoryStore(agents_settings, embedder) as store:
        found = store.search(texts[1], mode="semantic", k=3, context={"thread_id": thread})
    assert found and found[0].content == texts[1]
    assert found[0].context["policy"] == second.policy

    # Working memory and the broadcast stream in Redis, with TTLs.
    client = redis.Redis.from_url(endpoints.redis_url or "", decode_responses=True)
    wm = json.loads(client.get(WorkingMemory.wm_key(thread)) or "{}")
    assert wm["turn"] == 2 and wm["policy"] == second.policy
    assert (
        0 < client.ttl(WorkingMemory.wm_key(thread)) <= agents_settings.agents.working_memory_ttl_s
    )
    assert client.xlen(WorkingMemory.stream_key(thread)) == 2
    assert client.ttl(WorkingMemory.stream_key(thread)) > 0

    # One span per node per turn, and the LLM call with GenAI attributes.
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("agents.turn") == 2
    assert {f"agents.{n}" for n in NODES} <= set(names)
    chats = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    assert chats
    attrs = chats[0].attributes or {}
    assert attrs["emily.prompt.version"] == "test-prompt-7"
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["gen_ai.response.model"]
    assert attrs["gen_ai.request.model"]
    turn_span = next(s for s in spans if s.name == "agents.turn")
    node_span = next(s for s in spans if s.name == "agents.perceive")
    assert node_span.context.trace_id in {
        s.context.trace_id for s in spans if s.name == "agents.turn"
    }
    assert turn_span.attributes and turn_span.attributes["emily.policy"] in world.POLICIES

    # The thread is durable: a new agent (a new process, in effect) sees it.
    async with await Agent.open(no_llm, embedder=embedder) as again:
        view = await again.thread(thread)
        assert view is not None and view.turn == 2 and not view.pending
        assert [h["policy"] for h in view.history] == [first.policy, second.policy]
        assert await again.thread("no-such-thread") is None
        third = await again.step(thread, Stimulus(text="All quiet again."))
        assert third.turn == 3


async def test_llm_down_degrades_to_instinct_and_affect(
    agents_settings: Settings, embedder: Any
) -> None:
    async with await Agent.open(llm_down(agents_settings), embedder=embedder) as agent:
        result = await agent.step("llm-down", Stimulus(text="A strange new device arrived."))
    assert result.degraded
    assert result.degraded_reason and "cognition" in result.degraded_reason
    assert result.layer in {"instinct", "affect"}
    assert all(p["layer"] != "cognition" for p in result.proposals)
    assert result.episode_id is not None  # memory still works


async def test_llm_slower_than_a_per_turn_deadline(
    agents_settings: Settings, llm_server: LlmServer, embedder: Any
) -> None:
    """A tight cognition budget for one turn (the demo's forced degradation) comes with that
    turn's context; the shared settings are never changed."""
    configured = agents_settings.agents.cognition_deadline_s
    async with await Agent.open(agents_settings, embedder=embedder, durable=False) as agent:
        result = await agent.step(
            "llm-slow", Stimulus(text="Someone praised my idea."), cognition_deadline_s=0.06
        )
        assert agent.context().cognition_budget_s() > 0.06  # the next turn's budget
    assert result.degraded and result.degraded_reason
    assert result.degraded_reason.startswith("cognition: ")
    assert "deadline" in result.degraded_reason.lower() and "0.06" in result.degraded_reason
    assert result.appraisal is None
    assert agents_settings.agents.cognition_deadline_s == configured


def estimate(threat: float, valence: float) -> Appraiser:
    def appraise(text: str, embedding: Sequence[float] | None) -> Mapping[str, float]:
        assert embedding is not None and len(embedding) == 384  # perceive embeds first
        return {"threat": threat, "valence": valence}

    return appraise


def broken(text: str, embedding: Sequence[float] | None) -> Mapping[str, float]:
    raise RuntimeError("model file missing")


async def test_an_appraiser_estimates_cues_in_perceive(
    agents_settings: Settings, embedder: Any
) -> None:
    settings = variant(agents_settings, agents={"cognition_enabled": False})
    calm = "The garden is quiet."
    async with await Agent.open(settings, embedder=embedder, durable=False) as plain:
        baseline = await plain.step("appraise-0", Stimulus(text=calm))
    async with await Agent.open(
        settings, embedder=embedder, durable=False, appraiser=estimate(0.95, -0.8)
    ) as agent:
        alarmed = await agent.step("appraise-1", Stimulus(text=calm))
        given = await agent.step("appraise-2", Stimulus(text=calm, threat=0.1, valence=0.5))
    assert not alarmed.degraded, alarmed.degraded_reason
    assert alarmed.salience == pytest.approx(0.2 + 0.8 * 0.95)
    assert alarmed.salience > baseline.salience
    assert alarmed.affect[0] < baseline.affect[0]
    # What the sender gives wins over the appraiser.
    assert given.salience < alarmed.salience and given.affect[0] > 0


@pytest.mark.parametrize(
    ("appraiser", "reason"),
    [
        (estimate(0.5, 5.0), "appraiser: ValueError: valence = 5.0 is outside [-1, 1]"),
        (broken, "appraiser: RuntimeError: model file missing"),
    ],
    ids=["out-of-range", "raises"],
)
async def test_a_failing_appraiser_degrades_to_the_word_list(
    agents_settings: Settings, embedder: Any, appraiser: Appraiser, reason: str
) -> None:
    settings = variant(agents_settings, agents={"cognition_enabled": False})
    async with await Agent.open(
        settings, embedder=embedder, durable=False, appraiser=appraiser
    ) as agent:
        result = await agent.step("appraise-bad", Stimulus(text="Smoke and fire!"))
    assert result.degraded_reason == reason
    assert result.salience == pytest.approx(0.2 + 0.8 * 0.9)  # two threat words: 0.9


async def test_a_prompt_that_cannot_be_rendered_degrades(
    agents_settings: Settings, embedder: Any
) -> None:
    bad = CognitionPrompt(system="s", user="{situation} {nope}", version="broken-1")
    async with await Agent.open(
        llm_down(agents_settings), embedder=embedder, durable=False, prompt=lambda: bad
    ) as agent:
        result = await agent.step("prompt-bad", Stimulus(text="Hello."))
    assert result.degraded_reason == "cognition: no usable prompt (KeyError: 'nope')"
    assert result.prompt is None


async def test_no_time_left_skips_cognition(agents_settings: Settings, embedder: Any) -> None:
    tight = variant(agents_settings, agents={"loop_deadline_s": 0.01})
    async with await Agent.open(tight, embedder=embedder, durable=False) as agent:
        result = await agent.step("no-time", Stimulus(text="Hello there."))
    assert result.degraded_reason and "no time left" in result.degraded_reason


async def test_redis_down_degrades_and_says_so(agents_settings: Settings, embedder: Any) -> None:
    no_redis = variant(
        agents_settings,
        agents={"cognition_enabled": False},
        redis=agents_settings.redis.model_copy(
            update={"url": SecretStr(f"redis://127.0.0.1:{closed_port()}/0")}
        ),
    )
    async with await Agent.open(no_redis, embedder=embedder) as agent:
        first = await agent.step("redis-down", Stimulus(text="A friend calls."))
        second = await agent.step("redis-down", Stimulus(text="A friend calls again."))
        ready = await agent.readiness()
        assert await agent.deps.working_memory.recall("redis-down") is None
        assert await agent.deps.working_memory.broadcasts("redis-down") == []
    assert first.degraded and first.degraded_reason and "redis" in first.degraded_reason
    assert second.degraded_reason and "redis" in second.degraded_reason
    assert second.turn == 2
    assert ready["postgres"] and not ready["redis"]


async def test_memory_down_degrades_and_says_so(agents_settings: Settings, embedder: Any) -> None:
    no_db = variant(
        agents_settings,
        agents={"cognition_enabled": False},
        database=agents_settings.database.model_copy(
            update={"dsn": SecretStr(f"postgresql://x:y@127.0.0.1:{closed_port()}/emily")}
        ),
    )
    async with await Agent.open(no_db, embedder=embedder, durable=False) as agent:
        result = await agent.step("memory-down", Stimulus(text="A quiet morning."))
        ready = await agent.readiness()
    assert result.degraded_reason and "memory" in result.degraded_reason
    assert result.episode_id is None
    assert not ready["postgres"]


async def test_working_memory_round_trip(agents_settings: Settings, endpoints: Endpoints) -> None:
    wm = WorkingMemory(endpoints.redis_url, timeout_s=0.5, ttl_s=60, maxlen=5)
    try:
        assert await wm.ping()
        for i in range(8):
            assert await wm.broadcast("wm-test", {"i": i}) is None
        latest = await wm.broadcasts("wm-test", count=3)
        assert [b["i"] for b in latest] == [7, 6, 5]
        assert await wm.remember("wm-test", {"x": 1}) is None
        assert await wm.recall("wm-test") == {"x": 1}
    finally:
        await wm.close()
    unconfigured = WorkingMemory(None, timeout_s=0.1, ttl_s=1, maxlen=1)
    assert await unconfigured.remember("t", {}) == "redis: not configured"
    assert not await unconfigured.ping()


async def test_durable_threads_need_postgres(agents_settings: Settings, embedder: Any) -> None:
    from emily.errors import StackError

    dsn = SecretStr(f"postgresql://x:y@127.0.0.1:{closed_port()}/emily")
    no_db = variant(
        agents_settings,
        agents={"cognition_enabled": False, "memory_enabled": False},
        database=agents_settings.database.model_copy(update={"dsn": dsn, "admin_dsn": dsn}),
    )
    with pytest.raises(StackError, match="checkpoints"):
        await Agent.open(no_db, embedder=embedder)
