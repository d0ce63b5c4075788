"""Chaos scenarios: faults and disruptions against the real broker, with a verdict."""

from streams.chaos.runner import ChaosOptions, run_scenario
from streams.chaos.scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "ChaosOptions", "Scenario", "run_scenario"]
