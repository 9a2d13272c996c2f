"""One memory and process ceiling for a whole sandboxed call tree: a cgroup per call.

Resource limits bind one process each, so without a cgroup a call may hold
``processes x memory_bytes`` (the sandbox then keeps ``processes`` at 2). Where this
process may create cgroups, each call gets its own group with one ceiling for every
process in it: cgroup v2 (``memory.max``, ``memory.swap.max``, ``pids.max``) when the
unified hierarchy delegates the memory and pids controllers here, else the v1 memory
and pids hierarchies (``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``,
``pids.max``). The sandbox's first process joins the group before it starts anything
else, so everything the code starts is inside; :meth:`CallGroup.close` kills what is
left and removes the group.
"""

import contextlib
import functools
import logging
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
JOIN_SCRIPT = (
    'while [ "$1" != -- ]; do echo $$ > "$1" || exit 111; shift; done; shift; '
    'unset PWD OLDPWD; exec "$@"'
)
"""``sh -c`` script: write its own pid into each file up to ``--``, then exec the rest
(without the ``PWD`` the shell exports, so the sandbox's environment stays minimal)."""


@dataclass(frozen=True)
class Layout:
    """Where per-call groups are made: one v2 parent, or the v1 memory and pids parents."""

    version: Literal["v2", "v1"]
    parents: tuple[Path, ...]


@functools.cache
def layout() -> Layout | None:
    """The cgroup layout this process may create groups in, or None (probed once)."""
    try:
        found = _find()
    except OSError as exc:
        logger.info("sandbox: no usable cgroup (%s)", exc)
        return None
    if found is None:
        logger.info("sandbox: no writable cgroup with memory and pids controllers")
    else:
        logger.info("sandbox: one ceiling per call from cgroup %s under %s", found.version, found)
    return found


def _own_paths() -> dict[str, str]:
    """Controller name ("" for the v2 hierarchy) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _find() -> Layout | None:
    own = _own_paths()
    if "" in own:
        for mount in (_ROOT, _ROOT / "unified"):
            parent = mount / own[""].lstrip("/")
            control = parent / "cgroup.subtree_control"
            if not control.is_file() or not {"memory", "pids"} <= set(control.read_text().split()):
                continue
            if _can_make(parent, "memory.max") and _can_make(parent, "pids.max"):
                return Layout("v2", (parent,))
    if "memory" in own and "pids" in own:
        memory = _ROOT / "memory" / own["memory"].lstrip("/")
        pids = _ROOT / "pids" / own["pids"].lstrip("/")
        if _can_make(memory, "memory.limit_in_bytes") and _can_make(pids, "pids.max"):
            return Layout("v1", (memory, pids))
    return None


def _can_make(parent: Path, control: str) -> bool:
    """Whether a child group of ``parent`` can be made, has ``control`` and takes a process.

    Joining is tried for real (a throwaway ``sh`` runs :data:`JOIN_SCRIPT`): under cgroup v2
    delegation rules a group can be creatable yet refuse this user's processes.
    """
    probe = parent / f"acdc-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        if not (probe / control).is_file():
            return False
        joined = subprocess.run(
            ["/bin/sh", "-c", JOIN_SCRIPT, "sh", str(probe / "cgroup.procs"), "--", "true"],
            check=False,
            timeout=10,
        )
        return joined.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        for _ in range(50):  # the probe process may take a moment to leave the group
            try:
                probe.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


class CallGroup:
    """The cgroup(s) of one sandboxed call, with its memory and process ceiling."""

    def __init__(self, found: Layout, memory_bytes: int, processes: int) -> None:
        """Make the group(s) and write the ceilings; raises OSError when refused."""
        name = f"acdc-sandbox-{secrets.token_hex(8)}"
        self.layout = found
        self.dirs = [parent / name for parent in found.parents]
        try:
            for folder in self.dirs:
                folder.mkdir()
            if found.version == "v2":
                group = self.dirs[0]
                _write(group / "memory.max", memory_bytes)
                if (group / "memory.swap.max").exists():
                    _write(group / "memory.swap.max", 0)
                _write(group / "pids.max", processes)
            else:
                memory, pids = self.dirs
                _write(memory / "memory.limit_in_bytes", memory_bytes)
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / "memory.memsw.limit_in_bytes", memory_bytes)
                _write(pids / "pids.max", processes)
        except OSError:
            self.close()
            raise

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` file of each group, for :data:`JOIN_SCRIPT`."""
        return [str(folder / "cgroup.procs") for folder in self.dirs]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this call at the memory ceiling."""
        events = "memory.events" if self.layout.version == "v2" else "memory.oom_control"
        try:
            text = (self.dirs[0] / events).read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def close(self) -> None:
        """Kill every process still in the group(s), then remove them; never raises."""
        for _ in range(50):
            left = [pid for folder in self.dirs for pid in _pids(folder)]
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            removed = True
            for folder in self.dirs:
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    removed = False
            if removed:
                return
            time.sleep(0.02)
        logger.warning("sandbox: could not remove cgroup %s", self.dirs)


def _write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n")


def _pids(folder: Path) -> list[int]:
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []
