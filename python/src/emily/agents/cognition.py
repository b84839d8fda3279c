"""The cognitive layer: the LLM appraises the stimulus and proposes candidate policies.

The model only proposes; the workspace decides. Output is constrained to a small JSON schema so
even a 135M-parameter model produces something usable, and anything that goes wrong (backend down,
deadline, invalid JSON) is the caller's cue to decide without cognition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer
from pydantic import BaseModel, Field

from emily.agents.workspace import Proposal
from emily.inference.types import ChatMessage, StructuredResult

T = TypeVar("T", bound=BaseModel)

PolicyName = Literal["rest", "withdraw", "approach", "explore", "reflect"]


# Words, not floats: a grammar allows any number of digits, and small models use them all.
CONFIDENCE = {"low": 0.3, "medium": 0.6, "high": 0.9}


class CognitivePlan(BaseModel):
    """What the LLM must return: flat and short, because every token costs (about 0.3 s each on
    the shared 2-core test machine), and the decision comes before the free text."""

    policy: PolicyName
    confidence: Literal["low", "medium", "high"]
    appraisal: str = Field(max_length=40)


class StructuredLLM(Protocol):
    async def generate_structured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[T],
        *,
        max_tokens: int = ...,
        deadline_s: float | None = ...,
    ) -> StructuredResult[T]: ...


# Short on purpose: on a small CPU every prompt token costs tens of milliseconds.
SYSTEM = (
    "Choose a policy for the situation: rest, withdraw (to safety), approach (people), "
    "explore (new things) or reflect; say how confident (low, medium, high) and why in a few words."
)


def describe_mood(mood: Sequence[float]) -> str:
    valence, arousal = mood[0], mood[1]
    feeling = "good" if valence > 0.2 else "bad" if valence < -0.2 else "neutral"
    energy = "tense" if arousal > 0.2 else "calm" if arousal < -0.2 else "steady"
    return f"{feeling}, {energy}"


@dataclass(frozen=True)
class CognitionPrompt:
    """The cognition prompt: a system text and a user template over ``{situation}``, ``{mood}``
    and ``{memories}``. ``version`` names it in spans and in the turn's cognition output (e.g.
    ``prompts:/emily-cognition/3`` once it comes from a prompt registry)."""

    system: str
    user: str
    version: str = "builtin"

    def messages(
        self, text: str, mood: Sequence[float], recalled: Sequence[str]
    ) -> list[ChatMessage]:
        """Raises ``KeyError``/``ValueError``/``IndexError`` for a template with other fields."""
        memory = "; ".join(r[:80] for r in recalled[:2]) or "none"
        user = self.user.format_map(
            {"situation": text[:400], "mood": describe_mood(mood), "memories": memory}
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


DEFAULT_PROMPT = CognitionPrompt(
    system=SYSTEM,
    user="Situation: {situation}\nMood: {mood}\nMemories: {memories}",
    version="builtin-1",
)

# Called once per turn, in the event loop: a registry-backed provider caches (and refreshes in
# the background), it never blocks on the network here.
PromptProvider = Callable[[], CognitionPrompt]


def builtin_prompt() -> CognitionPrompt:
    return DEFAULT_PROMPT


class CognitionOutcome(BaseModel):
    proposals: list[Proposal]
    appraisal: str
    prompt: str = DEFAULT_PROMPT.version
    model: str
    backend: str
    input_tokens: int
    output_tokens: int
    latency_ms: float


async def deliberate(
    llm: StructuredLLM,
    messages: Sequence[ChatMessage],
    *,
    urgency: float,
    max_tokens: int,
    deadline_s: float,
    tracer: Tracer | None = None,
    model_hint: str = "",
    prompt_version: str = DEFAULT_PROMPT.version,
) -> CognitionOutcome:
    """One LLM call inside a GenAI ``chat`` span; raises whatever the client raises."""
    tracer = tracer or trace.get_tracer("emily.agents")
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"chat {model_hint}".strip(),
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model_hint,
            "gen_ai.request.max_tokens": max_tokens,
            "emily.deadline_s": deadline_s,
            "emily.prompt.version": prompt_version,
        },
        record_exception=True,
    ) as span:
        try:
            result = await llm.generate_structured(
                messages, CognitivePlan, max_tokens=max_tokens, deadline_s=deadline_s
            )
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_attribute("emily.latency_ms", (time.perf_counter() - started) * 1000)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        span.set_attributes(
            {
                "gen_ai.system": result.backend,
                "gen_ai.provider.name": result.backend,
                "gen_ai.request.model": model_hint or result.model,
                "gen_ai.response.model": result.model,
                "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                "emily.latency_ms": result.latency_ms,
                "emily.attempts": result.attempts,
            }
        )
    plan = result.value
    proposals = [
        Proposal("cognition", plan.policy, CONFIDENCE[plan.confidence], urgency, plan.appraisal)
    ]
    return CognitionOutcome(
        proposals=proposals,
        appraisal=plan.appraisal,
        prompt=prompt_version,
        model=result.model,
        backend=result.backend,
        input_tokens=result.usage.prompt_tokens,
        output_tokens=result.usage.completion_tokens,
        latency_ms=result.latency_ms,
    )
