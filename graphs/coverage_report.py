"""The printed report of ``acdc eval coverage``: one result of ``graphs/coverage_eval.py`` as text.

Member and seed accuracy with the answers cut before stating one, then each task force's
coverage of the benchmark beside its coverage of the run's pool, its best-of-N accuracy
by selector, its diversity, and the judge's calibration that the selectors relied on.
"""

from typing import Any

from acdc.agents.selectors import SELECTORS


def report_text(result: dict[str, Any]) -> str:
    """The printed report of an evaluation result."""
    n, questions, seed = result["n"], result["questions"], result["seed"]
    lines = [
        f"benchmark {result['benchmark']}: {questions} questions; run {result['run']}; N = {n}",
        f"answers: {result['answers']['generated']} generated, "
        f"{result['answers']['cached']} from the cache",
        *(
            f"server during {stage}: busy {u['busy_share']:.0%}, {u['mean_running']:.1f} "
            f"running, {u['tokens_per_s']:.0f} tokens/s"
            for stage, u in result.get("utilization", {}).items()
        ),
        f"member accuracy (unanswered: cut at {result.get('max_tokens', '?')} tokens "
        "before an answer):",
        *(
            f"  {expert:<40} {acc:.3f}  unanswered {result.get('unanswered', {}).get(expert, 0)}"
            for expert, acc in result["members"].items()
        ),
        f"seed alone (T={seed['temperature']:g}):",
        f"  {seed['expert_id']:<40} {seed['accuracy']:.3f}  unanswered {seed.get('unanswered', 0)}",
        f"task forces (coverage of the benchmark and of the run's {result['pool_tasks']} "
        f"tasks, then best-of-{n} accuracy by selector):",
    ]
    read = result.get("benchmark_notes", {})
    if read.get("count"):
        lines.insert(1, f"{read['count']} rows read one way of two (answer label over index):")
        lines[2:2] = [f"  {note}" for note in read["first"]]
    if result.get("missing_cells"):
        lines.insert(
            -1, f"skill matrix: {result['missing_cells']} cells not evaluated (masked in the pick)"
        )
    calibration = result.get("judge_calibration")
    if calibration:
        bar = (
            "" if calibration["trusted"] else f" (below the {calibration['min_agreement']:.0%} bar)"
        )
        lines.append(
            f"judge of the judge and tournament selectors ({calibration['judge']}): agreement "
            f"{calibration['agreement']:.0%} on {calibration['pairs']} labelled pairs, false "
            f"passes {calibration['false_pass_rate']:.0%}, {calibration['ungraded']} ungraded{bar}"
        )
    for name, force in result["task_forces"].items():
        picks = "  ".join(f"{s} {force['best_of_n'][s]:.3f}" for s in SELECTORS)
        pool = "  -  " if force["run_coverage"] is None else f"{force['run_coverage']:.3f}"
        lines.append(f"  {name:<13} coverage {force['coverage']:.3f}  pool {pool}  {picks}")
        if force["judge_fallbacks"]:
            lines.append(
                f"  {'':<13} the judge failed on {force['judge_fallbacks']} of {questions} "
                "questions (majority decided those)"
            )
        if force.get("unanswered"):
            lines.append(
                f"  {'':<13} {force['unanswered']} member answers cut before an answer "
                "(counted wrong)"
            )
        if "disagreement" in force:
            gains = ", ".join(f"+{g:.0%}" for g in force["coverage_gains"])
            lines.append(
                f"  {'':<13} disagreement {force['disagreement']:.2f}; coverage added per "
                f"member: {gains}"
            )
        members = ", ".join(force["members"])
        lines.append(f"  {'':<13} members (T={force['temperature']:g}): {members}")
    return "\n".join(lines)
