"""The bundled GGUF seed: conversion is idempotent and a killed conversion leaves nothing."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from acdc.population.seed import READY_MARKER, bundled_gguf, prepare_base


def test_a_second_call_reuses_the_prepared_seed(seed_cache: Path):
    folder = prepare_base(None, seed_cache)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    again = prepare_base(None, seed_cache)
    assert again == folder
    assert time.perf_counter() - started < 2.0
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert (folder / READY_MARKER).is_file()
    for name in ("config.json", "tokenizer.json", "chat_template.jinja"):
        assert (folder / name).is_file(), name
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_a_killed_conversion_leaves_no_half_folder(tmp_path: Path):
    cache = tmp_path / "cache"
    code = (
        "from pathlib import Path; from acdc.population.seed import prepare_base; "
        f"prepare_base(None, Path({str(cache)!r}))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    base_dir = cache / "base"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (base_dir.is_dir() and any(base_dir.iterdir())):
        time.sleep(0.2)
    time.sleep(3.0)  # let the conversion get under way
    import os

    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    entries = list(base_dir.iterdir())
    assert entries and all(e.name.startswith(".tmp-") for e in entries), entries

    folder = prepare_base(None, cache)
    assert (folder / READY_MARKER).is_file()
    assert [p.name for p in base_dir.iterdir()] == [folder.name]
    assert folder.name.startswith(bundled_gguf().stem)
