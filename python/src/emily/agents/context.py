"""What a run of the graph gets besides its state: LangGraph's ``Runtime`` context.

``AgentDeps`` are the dependencies an ``Agent`` opened once (memory, LLM, Redis ...);
``TurnContext`` adds what belongs to one turn: its deadline (measured from when the turn was
admitted), the cognition budget for this turn, whether the turn must store its episode, and the
two seams other components plug into — an ``appraiser`` for perception and a ``prompt``
provider for cognition. Nothing here is checkpointed, and nothing here is shared settings: a
caller that wants a tighter deadline for one turn passes it for that turn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Tracer

from emily.agents.cognition import PromptProvider, StructuredLLM, builtin_prompt
from emily.agents.perception import Appraiser
from emily.agents.settings import AgentsSettings
from emily.agents.working_memory import WorkingMemory

if TYPE_CHECKING:
    from emily.agents.ab import Assignment
    from emily.features.client import FeatureClient

# How much time the steps after cognition need, kept free inside the loop deadline.
RESERVE_S = 0.3


class MemoryLike(Protocol):
    def search(self, *args: Any, **kwargs: Any) -> list[Any]: ...

    def add(self, *args: Any, **kwargs: Any) -> int: ...

    def episode_with(self, context: dict[str, Any]) -> int | None: ...


class EmbedderLike(Protocol):
    def embed(self, texts: Sequence[str]) -> Any: ...


@dataclass
class AgentDeps:
    """What the nodes use; ``*_error`` says why a dependency is missing (a degraded note)."""

    working_memory: WorkingMemory
    memory: MemoryLike | None = None
    embedder: EmbedderLike | None = None
    llm: StructuredLLM | None = None
    llm_model: str = ""
    tracer: Tracer = field(default_factory=lambda: trace.get_tracer("emily.agents"))
    memory_error: str | None = None
    llm_error: str | None = None
    features: FeatureClient | None = None
    """The feature server (online features read in perceive, pushed in consolidate)."""
    features_error: str | None = None


@dataclass
class TurnReceipt:
    """What the turn has made durable so far: consolidate records the episode it committed,
    so a turn that fails after that point can say exactly what was stored."""

    episode_id: int | None = None


@dataclass(frozen=True)
class TurnContext:
    settings: AgentsSettings
    deps: AgentDeps
    deadline: float
    """``time.monotonic()`` by which the turn should be done (admission + loop deadline)."""
    cognition_deadline_s: float | None = None
    """The LLM's budget for this turn (``None``: ``settings.cognition_deadline_s``)."""
    require_episode: bool = False
    """A turn that cannot store its episode fails (``EpisodeNotStoredError``) instead of going on
    degraded: the API acknowledges only stored turns."""
    appraiser: Appraiser | None = None
    ab: Assignment | None = None
    """The A/B arm of this turn's thread (``None``: no experiment runs)."""
    prompt: PromptProvider = builtin_prompt
    receipt: TurnReceipt = field(default_factory=TurnReceipt)

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def budget_s(self, cap: float, reserve: float = 0.0) -> float:
        """``cap``, or less when the deadline comes sooner (``reserve`` kept for later steps)."""
        return min(cap, self.left_s() - reserve)

    def cognition_budget_s(self) -> float:
        cap = self.cognition_deadline_s
        return self.budget_s(self.settings.cognition_deadline_s if cap is None else cap, RESERVE_S)
