"""The demo's appraisal model: the registered champion, trained on the first run (``dvc repro``
of the repository's pipeline, then registered; ``emily mlops train`` does the same) and reused
afterwards. It labels the corpus's valence and appraises every turn of the scripted day."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from emily.errors import EmilyError

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

            with console.status("training the appraisal model (dvc repro; first run only) …") as s:
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
    except EmilyError as exc:
        problems.append(f"no appraisal model ({exc}): valence is derived (anchor method)")
        return None
    console.print(f"[green]●[/] appraisal  {appraiser.source} (champion)")
    return appraiser
