"""Upper bounds of the numeric settings: far above any real run, far below a hang.

An integer setting is a count, a size, a token limit, a port or a seed, and nothing a
run can use is astronomically large, while such a value makes loops (``acdc plan``
walks every generation), allocations and servers hang or fail far from the cause:
``generations: 10**26`` kept ``acdc plan`` busy forever. So every integer field of
:class:`acdc.context.Context` has an upper bound, checked where its type is (one place,
for files, options, environment variables and Studio alike), and a larger value is a
``ConfigError`` (exit status 2). Lower bounds stay with the field's own range checks.

The bounds are generous for paper-scale runs: :data:`DEFAULT_MAX` for any count or size
not named below, with tighter or looser ones where a unit says more.

Float settings are finite by their type check, and most are shares or thresholds with a
range of their own; the others get an upper bound here for the same reason: a timeout
of ``1e308`` seconds overflows the event loop's clock far from the cause, and a
temperature of a million is a typo, not a setting.
"""

DEFAULT_MAX = 1_000_000
"""Any count or size not named in :data:`MAX`: tasks, calls, examples, steps, engines."""
TOKENS_MAX = 10**7
"""Token limits of one call or one sequence (``*_max_tokens``, ``max_model_len``)."""
PORT_MAX = 65_535

MAX: dict[str, int] = {
    "generations": 100_000,
    "initial_population": 100_000,
    "children_per_generation": 100_000,
    "archive_size": 100_000,
    "dns_k": 100_000,
    "token_budget": 10**13,
    "random_seed": 2**63 - 1,
    "max_model_len": TOKENS_MAX,
    "kv_cache_gib": 100_000,
    "lora_rank": 65_536,
    "mutation_keep_rank": 65_536,
    "specialize_rank": 65_536,
    "request_retries": 1000,
    "scientist_retries": 1000,
    "judge_retries": 1000,
    "curator_retries": 1000,
    "evaluation_passes": 1000,
    "reflection_rounds": 1000,
}
"""Bounds that differ from :data:`DEFAULT_MAX`, by field name."""


def int_max(name: str) -> int:
    """The largest value the integer setting ``name`` accepts."""
    if name in MAX:
        return MAX[name]
    if name.endswith("_max_tokens"):
        return TOKENS_MAX
    if name.endswith("_port"):
        return PORT_MAX
    return DEFAULT_MAX


def out_of_bounds(name: str, value: int) -> str:
    """Why ``value`` is beyond the bound of ``name`` (also below its negative), or ''."""
    bound = int_max(name)
    if -bound <= value <= bound:
        return ""
    shown = str(value) if value.bit_length() < 128 else f"an integer of {value.bit_length()} bits"
    return f"{name} must be at most {bound:,}, got {shown}"


TIMEOUT_MAX = 7 * 86_400.0
"""Any ``*_timeout`` in seconds: a week."""
TEMPERATURE_MAX = 100.0
"""Any ``*_temperature``: servers accept any value, and far above 2 the words are noise."""
FLOAT_MAX: dict[str, float] = {
    "cost_budget_usd": 1e9,
    "crossover_weight_std": 1000.0,
    "mutation_sigma": 1000.0,
    "specialize_learning_rate": 10.0,
}
"""Bounds of the float settings that are neither timeouts nor temperatures, by name."""


def float_max(name: str) -> float | None:
    """The largest value the float setting ``name`` accepts; None: its own range check."""
    if name.endswith("_timeout"):
        return TIMEOUT_MAX
    if name.endswith("_temperature"):
        return TEMPERATURE_MAX
    return FLOAT_MAX.get(name)


def float_out_of_bounds(name: str, value: float) -> str:
    """Why ``value`` is above the bound of the float setting ``name``, or ''."""
    bound = float_max(name)
    if bound is None or value <= bound:
        return ""
    return f"{name} must be at most {bound:g}, got {value:g}"
