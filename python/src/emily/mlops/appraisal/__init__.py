"""The appraisal model: text → valence in [-1, 1], trained on human ratings (VADER lexicon)."""
