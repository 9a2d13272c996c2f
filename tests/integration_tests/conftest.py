"""Fixtures for tests on the real stack: the bundled SmolLM2 seed and a vLLM CPU server."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from acdc.context import Context
from acdc.population.bootstrap import Population, bootstrap
from acdc.population.server import PopulationServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the dequantized bundled seed (converted once per session)."""
    from acdc.population.seed import prepare_base

    cache = tmp_path_factory.mktemp("cache")
    prepare_base(None, cache)
    return cache


@pytest.fixture(scope="module")
def ctx(seed_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Context:
    return Context(
        runs_dir=str(tmp_path_factory.mktemp("runs")),
        run_id="it",
        cache_dir=str(seed_cache),
        vllm_port=free_port(),
        max_loras=2,
        max_loaded_adapters=2,
        max_num_seqs=32,
        kv_cache_gib=1,
        request_retries=2,
    )


@pytest.fixture(scope="module")
def population(ctx: Context) -> Population:
    return bootstrap(ctx)


@pytest.fixture(scope="module")
def server(ctx: Context, population: Population) -> Iterator[PopulationServer]:
    with PopulationServer(ctx, population.base_dir) as running:
        yield running
