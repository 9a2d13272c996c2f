"""The exact vLLM command a run starts: parallelism flags, and the settings that refuse."""

from pathlib import Path

import pytest

from acdc.context import ConfigError, Context
from acdc.population.server_launch import launch_command


def flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_a_single_engine_carries_no_parallel_flags() -> None:
    command = launch_command(Context(), Path("/m"), "cpu")
    assert not [a for a in command if "parallel" in a]


def test_tensor_and_data_parallel_reach_the_command_line() -> None:
    ctx = Context(tensor_parallel_size=2, data_parallel_size=4, vllm_extra_args=["--seed", "1"])
    command = launch_command(ctx, Path("/m"), "gpu")
    assert flag(command, "--tensor-parallel-size") == "2"
    assert flag(command, "--data-parallel-size") == "4"
    assert "--data-parallel-backend" not in command and "--data-parallel-size-local" not in command
    assert "--enable-lora" in command  # adapters still load at run time
    assert command[-2:] == ["--seed", "1"]  # the user's own flags come last and win


def test_multi_node_data_parallel_uses_ray_with_the_local_share() -> None:
    ctx = Context(data_parallel_size=8, data_parallel_size_local=4, data_parallel_backend="ray")
    command = launch_command(ctx, Path("/m"), "gpu")
    assert flag(command, "--data-parallel-size") == "8"
    assert flag(command, "--data-parallel-size-local") == "4"
    assert flag(command, "--data-parallel-backend") == "ray"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"data_parallel_size": 0}, "data_parallel_size"),
        ({"data_parallel_size": 2, "data_parallel_size_local": 3}, "data_parallel_size_local"),
        ({"data_parallel_size": 4, "data_parallel_size_local": 2}, "data_parallel_size_local"),
        ({"data_parallel_backend": "slurm"}, "data_parallel_backend"),
        ({"server_url": "http://a:1", "server_urls": ["http://b:1"]}, "server_urls"),
    ],
)
def test_bad_parallel_settings_are_refused(values: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        Context(**values)  # type: ignore[arg-type]


def test_attached_urls_come_from_either_setting() -> None:
    assert Context().attached_urls == []
    assert Context(server_url="http://a:1/").attached_urls == ["http://a:1"]
    assert Context(server_urls=["http://a:1", "http://b:2/"]).attached_urls == [
        "http://a:1",
        "http://b:2",
    ]
