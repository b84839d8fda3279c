"""The demo's second act, its data and settings: a stream that shifts from dictionary words to
chat-like text (emoticons, slang), every stimulus with its human ratings (VADER's).

The act's model is one of its own (``<model>-drift-demo``), trained in a pipeline workspace of
its own (``<state_dir>/demo/drift-pipeline``) on the lexicon's dictionary words only, the model
the issue describes: it has never seen chat text. The stream's pools, all from the installed
lexicon, never overlap:

* ``words``: dictionary words of the first model's held-out split;
* ``chat_seen``: chat tokens the stream brings before a retraining; the watch registers them
  (with the words) as new data, so the retrained model has seen these;
* ``chat_unseen``: the other chat tokens, for the A/B period and the turns after it, which no
  model is trained on: the errors measured on them are out of sample for both models.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emily.mlops.appraisal.lexicon import LexiconRow, installed_lexicon, read_lexicon

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.mlops.pipeline.layout import Layout

THREAD_PREFIX = "drift-act-"
WORKSPACE = Path("demo") / "drift-pipeline"
SEED = 7

# The act's pipeline: the lexicon's words only (chat arrives as labelled turns), a stratified
# sample of them and a one-point grid, so that a training takes well under a minute here.
PARAMS: dict[str, dict[str, Any]] = {
    "prepare": {"lexicon_kinds": ["word"], "max_rows": 1500, "test_fraction": 0.3},
    "validate": {"min_rows": 500},
    "drift": {"sample": 150, "permutations": 50},
    "train": {
        "kinds": ["word", "other"],
        "gammas": [1.5],
        "alphas": [0.1],
        "folds": 2,
        "cv_rows": 800,
    },
    "evaluate": {"min_r": 0.6, "bootstrap": 300},
}


@dataclass(frozen=True)
class ActPlan:
    """How long each part of the act is, in turns, and how often the timers fire."""

    words: int = 80
    chat_seen: int = 180
    ab_max: int = 360
    after: int = 60
    turns_per_thread: int = 3
    monitor_every: int = 10
    watch_every: int = 20
    window: int = 40
    reference: int = 60
    ab_share: float = 0.5

    @property
    def min_labelled(self) -> int:
        """A retraining waits until the stream has labelled most of the chat it brings (the
        words are in the training data already: not new)."""
        return self.chat_seen * 3 // 4


@dataclass(frozen=True)
class Pools:
    words: list[LexiconRow]
    chat_seen: list[LexiconRow]
    chat_unseen: list[LexiconRow]


def model_name(settings: Settings) -> str:
    return f"{settings.mlops.model_name}-drift-demo"


def act_settings(settings: Settings, layout: Layout, plan: ActPlan) -> Settings:
    """The demo's settings with the act's model, pipeline, monitor windows and A/B period; the
    loop without the LLM (the act is about the appraisal: cognition's seconds per turn would
    make its hundreds of turns minutes)."""
    mlops = settings.mlops.model_copy(
        update={
            "model_name": model_name(settings),
            "pipeline_dir": layout.root,
            "monitor_window": plan.window,
            "monitor_reference": plan.reference,
            "watch_min_labelled": plan.min_labelled,
            "watch_ab": True,
        }
    )
    agents = settings.agents.model_copy(
        update={
            "cognition_enabled": False,
            "appraiser": "champion",
            "ab_challenger_share": plan.ab_share,
        }
    )
    return settings.model_copy(update={"mlops": mlops, "agents": agents})


def pools(layout: Layout, plan: ActPlan) -> Pools:
    """The three disjoint pools, shuffled with a fixed seed (the same act every run)."""
    from emily.mlops.pipeline import dataset

    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    held_out = set(frame.loc[(frame["split"] == "test") & (frame["kind"] == "word"), "token"])
    rows = {r.token: r for r in read_lexicon(installed_lexicon())}  # last entry wins, as prepare
    words = sorted((r for t, r in rows.items() if t in held_out), key=lambda r: r.token)
    chat = sorted((r for r in rows.values() if r.kind == "other"), key=lambda r: r.token)
    rng = random.Random(SEED)
    rng.shuffle(words)
    rng.shuffle(chat)
    return Pools(
        words=words[: plan.words],
        chat_seen=chat[: plan.chat_seen],
        chat_unseen=chat[plan.chat_seen :],
    )
