"""Load prompt files and check their named variables before a run starts.

Prompts are plain ``str.format`` templates (``{name}`` variables, ``{{`` for a literal
brace): no template engine runs user-edited text. A user's prompts folder may replace
any bundled file by name.
"""

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent


class PromptError(ValueError):
    """A prompt file is missing or its variables differ from what its caller passes."""


@dataclass(frozen=True)
class Prompt:
    """One prompt template, where it came from, and the variables it uses."""

    name: str
    path: Path
    text: str
    variables: frozenset[str]

    @property
    def sha256(self) -> str:
        """Digest of the exact text, recorded by runs."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def render(self, **values: object) -> str:
        """Fill the template; values must match the declared variables exactly."""
        given = frozenset(values)
        if given != self.variables:
            raise PromptError(
                f"prompt {self.name} ({self.path}) uses {sorted(self.variables)} but was given "
                f"{sorted(given)}"
            )
        return self.text.format(**values)


def prompt_path(name: str, user_dir: str | Path = "") -> Path:
    """Path of ``<name>.txt``: the user's folder first, then the bundled prompts."""
    for folder in ([Path(user_dir)] if user_dir else []) + [PROMPTS_DIR]:
        path = folder / f"{name}.txt"
        if path.is_file():
            return path
    known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.txt")))
    raise PromptError(f"no prompt file {name}.txt in {user_dir or PROMPTS_DIR} (bundled: {known})")


def load_prompt(name: str, expected: set[str], user_dir: str | Path = "") -> Prompt:
    """Load a prompt and fail now, not mid-run, if its variables are not ``expected``."""
    path = prompt_path(name, user_dir)
    text = path.read_text()
    try:
        used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as err:
        raise PromptError(
            f"prompt {path}: bad braces ({err}); write {{{{ for a literal brace"
        ) from err
    bad = sorted(f for f in used if not f.isidentifier())
    if bad:
        raise PromptError(f"prompt {path}: variables must be plain names, got {bad}")
    if used != expected:
        missing, unknown = sorted(expected - used), sorted(used - expected)
        raise PromptError(
            f"prompt {path}: missing variables {missing}, unknown variables {unknown} "
            f"(expected exactly {sorted(expected)})"
        )
    return Prompt(name=name, path=path, text=text, variables=frozenset(used))
