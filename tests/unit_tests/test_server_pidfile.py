"""The pid file that lets a run stop the vLLM server a killed process of it left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from acdc.population.server import stop_orphan

HOST, PORT = "127.0.0.1", 1  # nothing binds port 1 here: the port wait ends at once


def _fake_server() -> subprocess.Popen[bytes]:
    """A long sleeper whose command line names vllm, in its own session like the server."""
    code = "import time; time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code, "vllm"], start_new_session=True)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _running(process: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)
    return process.poll() is None


def test_orphan_of_a_dead_owner_is_stopped(tmp_path: Path) -> None:
    server = _fake_server()
    pid_file = tmp_path / "vllm.pid"
    pid_file.write_text(f"{server.pid} {_dead_pid()}\n")
    try:
        stop_orphan(pid_file, HOST, PORT)
        assert server.wait(timeout=15) == -signal.SIGKILL
        assert not pid_file.exists()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)


def test_server_of_a_live_owner_is_left_alone(tmp_path: Path) -> None:
    server, owner = _fake_server(), _fake_server()
    pid_file = tmp_path / "vllm.pid"
    pid_file.write_text(f"{server.pid} {owner.pid}\n")
    try:
        stop_orphan(pid_file, HOST, PORT)
        assert _running(server)
        assert pid_file.exists()
    finally:
        for process in (server, owner):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_pid_of_another_program_is_never_killed(tmp_path: Path) -> None:
    """A recycled pid that is not a vLLM process survives; the stale file goes."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    pid_file = tmp_path / "vllm.pid"
    pid_file.write_text(f"{other.pid} {_dead_pid()}\n")
    try:
        stop_orphan(pid_file, HOST, PORT)
        assert _running(other)
        assert not pid_file.exists()
    finally:
        other.kill()
        other.wait()
