"""CPU settings: vLLM's thread knobs and preloads, torch's threads, the bench's CPU load."""

import os
import time
from pathlib import Path

import pytest

from acdc.context import ConfigError, Context
from acdc.population import server, server_launch
from acdc.population.server import serves_on_this_cpu
from acdc.torch_threads import apply_torch_threads
from bench.cpu_load import background_load, cpu_description


@pytest.fixture
def libraries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    found = {"tcmalloc": tmp_path / "libtcmalloc_minimal.so.4", "iomp": tmp_path / "libiomp5.so"}
    monkeypatch.setattr(server_launch, "find_tcmalloc", lambda: found["tcmalloc"])
    monkeypatch.setattr(server_launch, "find_iomp", lambda: found["iomp"])
    return found


def test_preload_none_takes_nothing(libraries: dict[str, Path]) -> None:
    chosen = server_launch.preload_libraries("none")
    assert chosen.paths == []
    assert "none" in chosen.reason


def test_preload_auto_takes_what_is_present_and_says_what_is_not(
    libraries: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    both = [libraries["tcmalloc"], libraries["iomp"]]
    assert server_launch.preload_libraries("auto").paths == both
    monkeypatch.setattr(server_launch, "find_iomp", lambda: None)
    chosen = server_launch.preload_libraries("auto")
    assert chosen.paths == [libraries["tcmalloc"]]
    assert "pip install intel-openmp" in chosen.reason


def test_preload_of_a_missing_library_is_logged_not_fatal(
    libraries: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_launch, "find_tcmalloc", lambda: None)
    chosen = server_launch.preload_libraries("tcmalloc")
    assert chosen.paths == []
    assert "libtcmalloc-minimal4" in chosen.reason
    assert server_launch.preload_libraries("iomp").paths == [libraries["iomp"]]


def test_launch_env_carries_preload_first_and_the_thread_binding(
    libraries: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/opt/user.so")
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    ctx = Context(cpu_threads_bind="nobind", vllm_preload="both")
    env = server_launch.launch_env(ctx, "cpu", server_launch.preload_libraries(ctx.vllm_preload))
    assert env["LD_PRELOAD"] == f"{libraries['tcmalloc']}:{libraries['iomp']}:/opt/user.so"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


def test_defaults_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    ctx = Context()
    assert (ctx.vllm_preload, ctx.cpu_threads_bind, ctx.torch_threads) == ("none", "", 0)
    env = server_launch.launch_env(ctx, "cpu", server_launch.preload_libraries(ctx.vllm_preload))
    assert "LD_PRELOAD" not in env and "VLLM_CPU_OMP_THREADS_BIND" not in env


def test_find_iomp_finds_the_pip_package_when_installed() -> None:
    found = server_launch.find_iomp()
    assert found is None or (found.name == "libiomp5.so" and found.is_file())


def test_torch_threads_automatic_takes_one_thread_beside_a_cpu_server() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert apply_torch_threads(0, shares_cores=False) == 2
        assert apply_torch_threads(0, shares_cores=True) == 1
        assert apply_torch_threads(3, shares_cores=True) == 3
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="torch_threads"):
        apply_torch_threads(-1, shares_cores=True)


def test_only_a_server_started_on_this_cpu_shares_its_cores() -> None:
    assert serves_on_this_cpu(Context(vllm_device="cpu"))
    assert not serves_on_this_cpu(Context(vllm_device="gpu"))
    assert not serves_on_this_cpu(Context(vllm_device="cpu", server_url="http://127.0.0.1:9/v1"))


def test_cpu_description_names_the_model_and_vector_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma\n")
    line = cpu_description(info)
    assert line.startswith("CPU: AMD EPYC 7B13; avx512: no; avx2: yes;")


def test_background_load_stops_its_neighbours() -> None:
    with background_load(1, max_seconds=60) as cores:
        assert len(cores) == 1
        running = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_busy_loop(int(p))]
        assert running
        assert all(os.sched_getaffinity(p) == set(cores) for p in running)
    time.sleep(0.1)
    assert not any(_is_busy_loop(p) for p in running)


def _is_busy_loop(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return b"PR_SET_PDEATHSIG" in Path(f"/proc/{pid}/cmdline").read_bytes() and state != "Z"
    except OSError:
        return False


def test_the_start_line_shows_vllms_message_without_its_prefix() -> None:
    line = "(EngineCore pid=16781) INFO 12-05 20:13:08 [cpu_model_runner.py:87] Warming up model"
    assert server.log_message(line) == "Warming up model"
    assert server.log_message("plain " * 30).endswith("...")
    assert len(server.log_message("plain " * 30)) == 80
