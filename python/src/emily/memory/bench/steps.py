"""How the benchmark reports progress: a ``Steps`` receives the phase it is in and every sweep
point done. The logic never draws anything itself; the CLI passes a Rich implementation
(``emily.cli.memory_bench_cmds``), tests and library callers pass nothing (``NoSteps``)."""

from __future__ import annotations

from typing import Protocol


class Steps(Protocol):
    def begin(self, total: int) -> None:
        """The run starts; ``total`` sweep points will follow."""

    def phase(self, text: str) -> None:
        """What the run is doing now (loading, building, a sweep point)."""

    def step(self) -> None:
        """One sweep point done."""

    def end(self) -> None:
        """The run is over (also after an error)."""


class NoSteps:
    """Reports nowhere."""

    def begin(self, total: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def step(self) -> None:
        pass

    def end(self) -> None:
        pass
