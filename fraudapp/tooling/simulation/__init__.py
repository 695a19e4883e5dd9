"""Labeled simulated traffic for fraudapp: populations, exact truth, generator, Kafka runner."""

from fraudapp.tooling.simulation.generator import DEFAULT_MIX, SimConfig, Traffic, generate, parse_mix

__all__ = ["DEFAULT_MIX", "SimConfig", "Traffic", "generate", "parse_mix"]
