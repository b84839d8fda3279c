"""The A/B test of the appraisal model in the loop: which model a thread's turns use.

Two appraisers follow the registry, one per alias (``champion``, ``challenger``). While both are
loaded, name different versions and ``agents.ab_challenger_share`` is above 0, an experiment
runs: its name is the two versions (``emily-appraisal/3-vs-emily-appraisal/4``) and each thread
is assigned to an arm by a hash of that name and the thread id (``emily.mlops.abtest``), so a
thread stays on one model for the whole experiment, in every process. A new challenger is a new
experiment. Without a challenger every thread gets the champion and no arm is recorded.

The arm travels with the turn (its run context), is stored in the episode's context and set on
the turn's trace; the outcome of a turn is the appraisal's absolute error against the
stimulus's human ratings, when it has some (``emily mlops ab report`` analyses them).
"""

from __future__ import annotations

from dataclasses import dataclass

from emily.agents.champion import ChampionAppraiser
from emily.agents.perception import Appraiser
from emily.mlops.abtest.assignment import Arm, assign_arm, experiment_name


@dataclass(frozen=True)
class Assignment:
    experiment: str
    arm: Arm


__all__ = ["ABAppraisers", "Assignment", "experiment_name"]


class ABAppraisers:
    """The champion's and the challenger's appraisers, and the arm of each thread."""

    def __init__(
        self, champion: ChampionAppraiser, challenger: ChampionAppraiser, share: float
    ) -> None:
        self.champion = champion
        self.challenger = challenger
        self.share = share

    def for_thread(self, thread_id: str) -> tuple[Appraiser, Assignment | None]:
        champion, challenger = self.champion.loaded, self.challenger.loaded
        if self.share <= 0 or champion is None or challenger is None or champion == challenger:
            return self.champion, None
        experiment = experiment_name(champion, challenger)
        arm = assign_arm(thread_id, experiment=experiment, challenger_share=self.share)
        chosen = self.challenger if arm == "challenger" else self.champion
        return chosen, Assignment(experiment, arm)
