"""The operator registry: every crossover and mutation registered by name.

An operator is a frozen dataclass whose fields are its parameters (with defaults), plus
class attributes ``name``, ``kind`` and ``paper``. Variants (TIES, DARE-TIES, SLERP) are
configured instances of one class, registered under their own names.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import torch

from acdc.population.base import BaseWeights
from acdc.population.lora import LoraDelta, read_adapter

OperatorKind = Literal["crossover", "mutation"]


@dataclass(frozen=True)
class Parent:
    """A parent expert as operators see it: its adapter folder (None for the base model)."""

    expert_id: str
    adapter_dir: Path | None

    @cached_property
    def delta(self) -> LoraDelta:
        """The parent's LoRA factors; empty for the base model itself."""
        return {} if self.adapter_dir is None else read_adapter(self.adapter_dir)


class Crossover(Protocol):
    """Combines parents into one child delta."""

    name: ClassVar[str]
    kind: ClassVar[OperatorKind]
    paper: ClassVar[str]

    def apply(
        self, *, parents: Sequence[Parent], base: BaseWeights, generator: torch.Generator
    ) -> LoraDelta:
        """Return the child's delta over the base (unbounded rank; the caller caps it)."""
        ...


class Mutation(Protocol):
    """Perturbs one delta."""

    name: ClassVar[str]
    kind: ClassVar[OperatorKind]
    paper: ClassVar[str]

    def apply(
        self, *, delta: LoraDelta, base: BaseWeights, generator: torch.Generator
    ) -> LoraDelta:
        """Return the mutated delta over the base (unbounded rank; the caller caps it)."""
        ...


class TrainedDelta(dict[str, tuple[torch.Tensor, torch.Tensor]]):
    """A delta an operator trained, with the ``training`` report the breeder records.

    Returned by mutations that learn (``specialize``); ``expert.json`` keeps the report
    (niche, examples, steps, losses) beside the operator's parameters.
    """

    def __init__(self, delta: LoraDelta, training: dict[str, Any]) -> None:
        """``delta`` as from any operator; ``training`` plain JSON data."""
        super().__init__(delta)
        self.training = training


_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any]) -> None:
    """Register an operator class (or a partial of one) under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"operator {name!r} is already registered")
    _REGISTRY[name] = factory


def names(kind: OperatorKind | None = None) -> list[str]:
    """Registered operator names, optionally of one kind."""
    return sorted(n for n, f in _REGISTRY.items() if kind is None or _kind_of(f) == kind)


def create(name: str, kind: OperatorKind, **params: Any) -> Any:
    """Build the operator ``name`` with ``params``; unknown names list the valid ones."""
    factory = _REGISTRY.get(name)
    if factory is None or _kind_of(factory) != kind:
        raise KeyError(f"unknown {kind} operator {name!r}; valid: {', '.join(names(kind))}")
    return factory(**params)


def describe(operator: Any) -> dict[str, Any]:
    """Name and parameter values of an operator instance, as stored in expert metadata."""
    return {
        "name": operator.name,
        "params": {f.name: getattr(operator, f.name) for f in fields(operator)},
    }


def _kind_of(factory: Callable[..., Any]) -> str:
    # An operator class, or a partial of one: ``kind`` is a class attribute of the class.
    target: Any = getattr(factory, "func", factory)
    return str(target.kind)
