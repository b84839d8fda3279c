"""The demo's appraisal model: the registered champion, trained on the first run (``dvc repro``
of the repository's pipeline, then registered; ``emily mlops train`` does the same) and reused
afterwards. It labels the corpus's valence and appraises every turn of the scripted day."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console

    from emily.agents.champion import ChampionAppraiser
    from emily.config import Settings


def ensure_champion(
    settings: Settings,
    console: Console,
    problems: list[str],
    *,
    train: bool,
    embed: Callable[[Sequence[str]], np.ndarray[Any, Any]] | None,
) -> ChampionAppraiser | None:
    """The loaded champion appraiser, training the first model when there is none (``train``);
    ``None``, with the reason in ``problems``, when no champion can be had."""
    from emily.agents.champion import ChampionAppraiser
    from emily.mlops import registry
    from emily.mlops.tracking import connect

    name = settings.mlops.model_name
    try:
        with console.status("looking up the appraisal model …"):
            champion = registry.by_alias(connect(settings), name, registry.CHAMPION)
        if champion is None and not train:
            problems.append(
                f"no {name}@champion: valence is derived (anchor method); "
                "`emily mlops train` trains one"
            )
            return None
        if champion is None:
            from emily.mlops import lifecycle

            status = console.status("training the appraisal model (dvc repro; first run only) …")
            # MLflow prints run links on stdout, which is the demo's own output.
            with status as s, contextlib.redirect_stdout(io.StringIO()):
                result = lifecycle.train(
                    settings,
                    trained_by="emily demo",
                    on_stage=lambda stage: s.update(f"training the appraisal model: {stage} …"),
                )
            console.print(f"[green]●[/] appraisal model trained: {name} v{result['version']}")
        appraiser = ChampionAppraiser(settings, embed)
        if not appraiser.refresh():
            problems.append(f"{appraiser.error}: valence is derived (anchor method)")
            return None
    except Exception as exc:  # the demo goes on without an optional part; the report says why
        problems.append(f"no appraisal model ({exc}): valence is derived (anchor method)")
        return None
    console.print(f"[green]●[/] appraisal  {appraiser.source} (champion)")
    return appraiser


def register_prompt_or_note(settings: Settings, console: Console, problems: list[str]) -> None:
    """The cognition prompt in MLflow's prompt registry, as ``emily up`` leaves it (the turns
    load it by alias); without MLflow the built-in text is used and the report says so."""
    from emily.provision import register_prompt

    try:
        line = register_prompt(settings)
    except Exception as exc:  # optional, like the champion
        problems.append(f"prompt registry unavailable ({exc}); the built-in prompt is used")
        return
    console.print(f"[green]●[/] prompt     {line.split(': ')[-1]}")
