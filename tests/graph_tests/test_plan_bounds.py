"""``acdc plan`` at the upper bounds of its integer settings (issue 20): it must finish.

A plan of 100,000 generations takes over 10 CPU seconds, beyond the fast tier's limit,
so it lives here; the refusals beyond the bounds stay in unit_tests/test_hostile_inputs.py.
"""

import json
import subprocess
import sys
from pathlib import Path

ACDC = [sys.executable, "-c", "from acdc.cli import main; main()"]


def test_plan_at_the_bounds_a_real_run_could_use_still_works(tmp_path: Path):
    config = tmp_path / "big.yaml"
    config.write_text("generations: 100000\nchildren_per_generation: 1000\npool_max: 100000\n")
    done = subprocess.run(
        [*ACDC, "plan", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(json.loads(done.stdout)["per_generation"]) == 100_000
