"""Frozen copies of earlier implementations, run by the benchmarks as same-run baselines.

Nothing here imports ``featureops``: a baseline keeps measuring the old code while the
package changes. See each module's docstring for its origin and what was adapted.
"""
