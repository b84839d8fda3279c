"""Distribution-drift detectors: per-feature two-sample tests (KS, PSI, chi-square), embedding-space
tests for text (MMD with a permutation p-value, a classifier two-sample test), multi-feature reports
with a multiple-testing correction, and the sliding-window monitor of a stream.

Numerics are numpy/scipy/scikit-learn of our own (docs/adr/0002-drift-detectors.md says why and
gives the measurements); every detector returns a typed :class:`emily.drift.results.DriftResult`.
"""
