"""A/B test of a challenger appraisal model against the champion in the agent loop: sticky
thread assignment (``assignment``) and an always-valid sequential test (``statistics``)."""
