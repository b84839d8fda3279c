"""Homeostatic and allostatic drives, and the reflex policy that is always available.

Each drive has a level in ``[0, 1]`` and a set-point. Levels drift down with time (needs build up)
and move with what the stimulus offers. Set-points are allostatic: anticipated demand (here the
perceived threat) raises the safety set-point before safety is actually lost. The reflex is a
lookup from the most urgent deficit to a policy, so it needs no memory, model or network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from emily.agents.state import DriveData

DRIVES = ("energy", "safety", "social", "novelty")

# Which policy relieves which drive: the reflex table.
RELIEF = {"energy": "rest", "safety": "withdraw", "social": "approach", "novelty": "explore"}
# What each stimulus feature does to each drive's level (a threat lowers safety, etc.).
EFFECTS: dict[str, dict[str, float]] = {
    "threat": {"safety": -0.6, "energy": -0.05},
    "social": {"social": 0.4},
    "novelty": {"novelty": 0.4, "energy": -0.02},
    "reward": {"energy": 0.2, "safety": 0.05},
}

# What carrying out each policy does for the drives (the loop's consequences for itself).
POLICY_EFFECTS: dict[str, dict[str, float]] = {
    "rest": {"energy": 0.25, "safety": 0.05},
    "withdraw": {"safety": 0.35, "social": -0.05},
    "approach": {"social": 0.3, "energy": -0.05},
    "explore": {"novelty": 0.35, "energy": -0.05},
    "reflect": {"safety": 0.05, "novelty": 0.05},
}


@dataclass(frozen=True)
class Drive:
    name: str
    level: float
    set_point: float
    drift_per_hour: float
    weight: float = 1.0

    @property
    def deficit(self) -> float:
        """How far below its set-point the drive is (0 when satisfied)."""
        return max(0.0, self.set_point - self.level)


def default_drives() -> dict[str, Drive]:
    return {
        "energy": Drive("energy", 0.8, 0.7, 0.03, 1.0),
        "safety": Drive("safety", 0.9, 0.8, 0.0, 1.4),
        "social": Drive("social", 0.6, 0.6, 0.05, 0.8),
        "novelty": Drive("novelty", 0.5, 0.5, 0.06, 0.6),
    }


@dataclass(frozen=True)
class ReflexProposal:
    policy: str
    urgency: float
    drive: str
    deficits: dict[str, float] = field(default_factory=dict)


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def update_drives(
    drives: dict[str, Drive], features: Mapping[str, float], dt_s: float = 0.0
) -> dict[str, Drive]:
    """Drift over ``dt_s`` seconds, apply the stimulus's effects, shift allostatic set-points."""
    hours = max(0.0, dt_s) / 3600.0
    updated: dict[str, Drive] = {}
    threat = _clip01(features.get("threat", 0.0))
    for name, drive in drives.items():
        level = drive.level - drive.drift_per_hour * hours
        for feature, effects in EFFECTS.items():
            level += effects.get(name, 0.0) * _clip01(features.get(feature, 0.0))
        set_point = drive.set_point
        if name == "safety":
            # Allostasis: anticipate, raise the bar while a threat is perceived, relax otherwise.
            set_point = _clip01(0.8 + 0.15 * threat)
        updated[name] = replace(drive, level=_clip01(level), set_point=set_point)
    return updated


def satisfy(drives: dict[str, Drive], policy: str) -> dict[str, Drive]:
    """Levels after the chosen policy has been carried out."""
    effects = POLICY_EFFECTS.get(policy, {})
    return {
        name: replace(d, level=_clip01(d.level + effects.get(name, 0.0)))
        for name, d in drives.items()
    }


def urgency(drive: Drive) -> float:
    """Weighted deficit squashed into ``[0, 1)``."""
    return 1.0 - math.exp(-3.0 * drive.weight * drive.deficit)


def reflex(drives: dict[str, Drive]) -> ReflexProposal:
    """The most urgent drive picks the policy that relieves it; no deficit means rest."""
    deficits = {name: round(d.deficit, 4) for name, d in drives.items()}
    if not drives:
        return ReflexProposal("rest", 0.0, "none", deficits)
    name, drive = max(drives.items(), key=lambda item: (urgency(item[1]), item[0]))
    u = urgency(drive)
    if u <= 0.0:
        return ReflexProposal("rest", 0.05, "none", deficits)
    return ReflexProposal(RELIEF.get(name, "rest"), u, name, deficits)


def drives_to_dict(drives: dict[str, Drive]) -> dict[str, DriveData]:
    return {
        n: DriveData(
            level=d.level, set_point=d.set_point, drift_per_hour=d.drift_per_hour, weight=d.weight
        )
        for n, d in drives.items()
    }


def drives_from_dict(data: Mapping[str, DriveData] | None) -> dict[str, Drive]:
    if not data:
        return default_drives()
    return {
        n: Drive(n, v["level"], v["set_point"], v["drift_per_hour"], v.get("weight", 1.0))
        for n, v in data.items()
    }
