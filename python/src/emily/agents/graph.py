"""The triune loop as a LangGraph ``StateGraph`` over ``AgentState`` with ``TurnContext`` as its
run context.

``perceive → recall → (instinct ∥ affect ∥ cognition) → workspace → act → consolidate``

The nodes are in ``emily.agents.nodes``; here each is wrapped in an OpenTelemetry span that
also records its duration in the turn's ``timings``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from emily.agents import nodes
from emily.agents.context import TurnContext
from emily.agents.state import RESET, AgentState


class Node(Protocol):
    """LangGraph injects ``runtime`` (by name) into a node that declares it."""

    def __call__(
        self, state: AgentState, *, runtime: Runtime[TurnContext]
    ) -> Awaitable[AgentState]: ...


NODES: tuple[tuple[str, Node], ...] = (
    ("perceive", nodes.perceive),
    ("recall", nodes.recall),
    ("instinct", nodes.instinct),
    ("affect", nodes.affect),
    ("cognition", nodes.cognition),
    ("workspace", nodes.workspace),
    ("act", nodes.act),
    ("consolidate", nodes.consolidate),
)
LAYERS = ("instinct", "affect", "cognition")


def traced(name: str, fn: Node) -> Node:
    """``fn`` inside an ``agents.<name>`` span; its duration lands in ``timings[name]``."""

    async def node(state: AgentState, *, runtime: Runtime[TurnContext]) -> AgentState:
        tracer = runtime.context.deps.tracer
        with tracer.start_as_current_span(
            f"agents.{name}",
            attributes={"emily.node": name, "emily.thread_id": state.get("thread_id", "")},
        ) as span:
            started = time.perf_counter()
            update = await fn(state, runtime=runtime)
            timings = dict(update.get("timings", {}))
            timings[name] = round((time.perf_counter() - started) * 1000, 3)
            update["timings"] = timings
            for note in update.get("notes", []):
                if note != RESET:
                    span.add_event("degraded", {"emily.note": note})
            return update

    node.__name__ = name
    return node


def build_graph() -> StateGraph[AgentState, TurnContext]:
    graph = StateGraph(AgentState, context_schema=TurnContext)
    for name, fn in NODES:
        graph.add_node(name, traced(name, fn))
    graph.add_edge(START, "perceive")
    graph.add_edge("perceive", "recall")
    for layer in LAYERS:
        graph.add_edge("recall", layer)
    graph.add_edge(list(LAYERS), "workspace")
    graph.add_edge("workspace", "act")
    graph.add_edge("act", "consolidate")
    graph.add_edge("consolidate", END)
    return graph
