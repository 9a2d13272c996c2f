"""What a setting's value must be: the error that says it is not, and shared range checks.

Every group of :mod:`acdc.settings` checks its own fields with these, so a refusal reads
the same wherever it comes from and always starts with the field's name.
"""

import math

from acdc import safe_files

ROLE_CONCURRENCY = (
    "Calls in flight at once (0 = the population server's capacity, max_num_seqs per "
    "engine, when it serves this role, else 8)."
)
"""Help of every ``<role>_concurrency`` setting."""
ROLE_RETRIES = "Retries of a failed or malformed call, then the item is rejected."
"""Help of every ``<role>_retries`` setting."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field (and its file)."""

    def __init__(self, message: str, field: str = "") -> None:
        """``field``: the setting at fault, when known, so callers can name its source."""
        super().__init__(message)
        self.field = field or message.split(" ", 1)[0].rstrip(":,")


def described(text: str) -> dict[str, str]:
    """Field metadata: the help shown by Studio, ``--help`` and ``acdc config``."""
    return {"description": text}


def require_positive(settings: object, *names: str) -> None:
    """Each named setting is > 0."""
    for name in names:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(settings, name)}", name)


def require_non_negative(settings: object, *names: str) -> None:
    """Each named setting is >= 0 (for counts and limits, 0 means none or automatic)."""
    for name in names:
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(settings, name)}", name)


def require_share(settings: object, *names: str) -> None:
    """Each named setting is a share, a threshold or a rate in [0, 1]."""
    for name in names:
        if not 0.0 <= getattr(settings, name) <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {getattr(settings, name)}", name)


def require_port(settings: object, name: str) -> None:
    """The named setting is a TCP port, 1..65535."""
    if not 0 < getattr(settings, name) < 65536:
        raise ConfigError(f"{name} must be in 1..65535, got {getattr(settings, name)}", name)


def check_role_calls(settings: object, role: str) -> None:
    """The call settings of one LLM role (scientist, judge, curator) are in range."""
    require_positive(settings, f"{role}_max_tokens", f"{role}_timeout")
    require_non_negative(settings, f"{role}_temperature", f"{role}_retries", f"{role}_concurrency")


def prices(name: str, value: list[float]) -> list[float]:
    """``value`` as ``[]`` or ``[input, output]`` USD per million tokens, both >= 0."""
    try:
        price = [float(v) for v in value]
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name}: prices must be numbers", name) from err
    if len(price) not in (0, 2) or any(not math.isfinite(v) or v < 0 for v in price):
        shown = safe_files.preview(price)
        raise ConfigError(f"{name} must be [] or [input, output] USD >= 0, got {shown}", name)
    return price
