"""Chaos scenarios: faults and disruptions against the real broker, with a verdict.

The command's entry point is :func:`streams.chaos.runner.run_scenario`; the
scenarios are in :mod:`streams.chaos.scenarios`. Nothing is imported here, so
the command line can read the scenario list without loading the runner.
"""
