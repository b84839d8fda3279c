"""The main job ``emily demo``: a WordNet corpus with derived affect labels, a scripted day of
stimuli through the agent loop, and an HTML report."""
