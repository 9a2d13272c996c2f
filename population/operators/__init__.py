"""Breeding operators (crossover and mutation), registered by name on import."""

from acdc.population.operators import linear, mergekit_ops, registry, specialize, svd_noise

__all__ = ["linear", "mergekit_ops", "registry", "specialize", "svd_noise"]
