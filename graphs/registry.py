"""One open set of resources per run folder and process, closed at interpreter exit.

Graph state holds ids only, so nodes find the long-lived things of their run (the
population server, the vector store) through a registry keyed by the run folder. This
works the same under ``acdc run``, ``acdc taskforce serve`` and ``langgraph dev``, where
the server process may call nodes of one run from several threads.
"""

import atexit
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from acdc.context import Context


class Closable(Protocol):
    """Resources that release what they hold (stop an owned server, close stores)."""

    def close(self) -> None:
        """Release everything; called once."""


R = TypeVar("R", bound=Closable)


class RunRegistry(Generic[R]):
    """Opens ``R`` for a run on first use with ``opener`` and hands back the same one after."""

    def __init__(self, opener: Callable[[Context], R]) -> None:
        self._opener = opener
        self._lock = threading.Lock()
        self._open: dict[Path, R] = {}
        atexit.register(self.close_all)

    def get(self, ctx: Context) -> R:
        """The open resources of ``ctx``'s run, opening them on first use."""
        key = ctx.run_dir.resolve()
        with self._lock:
            if key not in self._open:
                self._open[key] = self._opener(ctx)
            return self._open[key]

    def close_all(self) -> None:
        """Close every open run's resources (servers this process started are stopped)."""
        with self._lock:
            while self._open:
                _, resources = self._open.popitem()
                resources.close()
