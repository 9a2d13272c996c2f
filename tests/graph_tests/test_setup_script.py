"""scripts/setup.sh: quiet progress lines, pip's output in a log it names on failure.

Each test points the script at its own virtualenv folder (``ACDC_VENV``), so the
project's .venv is never touched. The failing install is real pip with no package
source (no index, no wheel folder, no config file), not a fake.
"""

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return env | {
        "ACDC_VENV": str(venv),
        "PIP_CONFIG_FILE": os.devnull,  # no find-links, no local index from pip.conf
        "PIP_NO_INDEX": "1",
        "ACDC_TORCH_CPU_INDEX": "http://127.0.0.1:9/",
    }


def test_an_up_to_date_virtualenv_returns_at_once_and_silently(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + SETUP.read_bytes())
    (venv / ".acdc-setup-cpu").write_text(digest.hexdigest() + "\n")
    result = subprocess.run(
        ["bash", str(SETUP)], env=clean_env(venv), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    assert sorted(p.name for p in venv.iterdir()) == [".acdc-setup-cpu"]  # nothing installed


def test_a_failing_pip_names_its_log_and_keeps_the_terminal_short(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["bash", str(SETUP)], env=clean_env(venv), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    log = venv / "acdc-setup.log"
    assert f"full output in {log}" in result.stderr
    assert "acdc setup [1/5]" in result.stderr and "FAILED at step 2" in result.stderr
    assert "No matching distribution found for torch==2.13.0+cpu" in log.read_text()
    assert len(result.stderr.splitlines()) < 30
    assert result.stdout == ""
    assert not (venv / ".acdc-setup-cpu").exists()  # a failed install is retried next time
