"""The run's judge calibration: measured at bootstrap, saved, obeyed by every skill matrix.

At every start of a run (``phases.record_run``) the judge grades the labelled pairs
(``agents/calibration.py``); the result goes to ``<run>/judge_calibration.json`` and is
printed. A resume with the same judge, prompt and pairs reuses the saved grades, but
applies the current bar and override. While the judge is not trusted, rubric tasks are
left out where scores are used: evaluation, fitness and DNS (``graphs/phases.py``), task
forces (``graphs/taskforce_resources.py``) and the report (``acdc/report.py``).
"""

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any

from acdc import atomic
from acdc.agents.calibration import (
    Calibration,
    calibrate,
    calibration_key,
    decide,
    load_calibration,
    load_pairs,
    pairs_path,
)
from acdc.agents.calibration import left_out as left_out
from acdc.agents.calibration import rubric_off as rubric_off
from acdc.agents.judge import Judge
from acdc.context import Context
from acdc.tasks import Task


def judge_spec(ctx: Context) -> str:
    """What identifies the judge: model, where it is served, sampling settings."""
    model = ctx.judge_model or f"{ctx.served_model_name} (population server)"
    where = f" at {ctx.judge_base_url}" if ctx.judge_base_url else ""
    return f"{model}{where}, T={ctx.judge_temperature:g}, max_tokens={ctx.judge_max_tokens}"


async def calibration_of(
    ctx: Context, judge: Judge, path: Path, reuse: Sequence[Path] = ()
) -> Calibration:
    """The judge's calibration, measured or reused, saved to ``path``.

    A saved calibration whose key matches (at ``path`` or ``reuse``) is taken as it is,
    under the current bar and override.

    Raises:
        PairsFileError: The labelled pairs file is malformed.
        OSError: It cannot be read.
    """
    # File work goes to a thread: this runs on an event loop, where blocking I/O stalls
    # every other coroutine (and `langgraph dev` refuses it outright).
    source = pairs_path(ctx.judge_pairs_file)
    pairs = await asyncio.to_thread(load_pairs, source, ctx.judge_calibration_size)
    spec = judge_spec(ctx)
    key = calibration_key(judge, spec, pairs)
    found = await asyncio.to_thread(lambda: [load_calibration(p) for p in [path, *reuse]])
    saved = [c for c in found if c is not None and c.key == key]
    if saved:
        result = decide(saved[0], ctx)
    else:
        result = await calibrate(
            judge,
            pairs,
            judge_spec=spec,
            pairs_file=str(source),
            min_agreement=ctx.judge_min_agreement,
            override=ctx.trust_judge,
        )
    await asyncio.to_thread(atomic.write_json, path, result.to_dict())
    return result


def ensure_calibration(
    ctx: Context,
    judge: Judge,
    path: Path,
    run_async: Callable[[Coroutine[Any, Any, Calibration]], Calibration],
) -> Calibration:
    """The run's judge calibration (``calibration_of``), printed with what it decides."""
    result = run_async(calibration_of(ctx, judge, path))
    print(result.line(), flush=True)
    if not result.trusted:
        print(
            "rubric tasks are not admitted and are left out of fitness, DNS and task forces "
            "(set trust_judge to override, or use a stronger judge)",
            flush=True,
        )
    return result


def counted(tasks: Iterable[Task], off: bool) -> list[Task]:
    """``tasks`` without the rubric ones when ``off``."""
    return [t for t in tasks if not (off and t.grading == "rubric")]
