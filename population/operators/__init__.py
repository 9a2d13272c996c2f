"""Breeding operators (crossover and mutation), registered by name."""
