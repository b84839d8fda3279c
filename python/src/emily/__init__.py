"""Emily Sovereign, Phase 1: episodic memory, inference gateway and triune agents."""

__version__ = "0.1.0"
