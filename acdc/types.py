"""Domain type aliases shared across acdc, so signatures say what an id or vector is."""

from typing import TypeAlias

import torch

ExpertId: TypeAlias = str
"""Name of an expert; also its model id on the population server."""

TaskId: TypeAlias = str
"""Stable id of a task in the pool and the vector store."""

ModuleName: TypeAlias = str
"""Dotted name of a 2-D weight in the base model, e.g. ``model.layers.0.self_attn.q_proj``."""

LoraFactors: TypeAlias = tuple[torch.Tensor, torch.Tensor]
"""(A, B) of one module: A is (rank, in_features), B is (out_features, rank); delta = B @ A."""
