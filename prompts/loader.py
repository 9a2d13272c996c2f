"""Find and load the prompt files in this folder; users may point roles at their own."""

from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent


def prompt_path(name: str) -> Path:
    """Path of the bundled prompt file ``<name>.txt``; a clear error if it is missing."""
    path = PROMPTS_DIR / f"{name}.txt"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.txt")))
        raise FileNotFoundError(f"no prompt file {path.name} in {PROMPTS_DIR} (have: {known})")
    return path
