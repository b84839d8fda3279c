"""Structured-output schemas the cognition layer asks for (also the bench's validity test)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Policy(BaseModel):
    """One candidate action with the agent's reason and the valence it expects."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=40, description="What to do, imperative.")
    rationale: str = Field(min_length=1, max_length=100, description="Why, in one sentence.")
    expected_valence: float = Field(ge=-1.0, le=1.0, description="Expected outcome, -1 to 1.")


class CognitionProposal(BaseModel):
    """One to three candidate policies for the current situation."""

    model_config = ConfigDict(extra="forbid")

    policies: list[Policy] = Field(min_length=1, max_length=3)


COGNITION_SYSTEM_PROMPT = (
    "You are the cognition module of an assistant. Propose one to three short candidate "
    "policies for the situation as JSON: each with an action, a one-sentence rationale and the "
    "expected valence between -1 (bad) and 1 (good)."
)
