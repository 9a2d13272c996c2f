"""The pass rule is one function, and no other product module writes it again."""

import ast
from pathlib import Path

import pytest

from acdc.population.archive import known_matrix, skill_matrix
from acdc.population.pass_rule import passes

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["acdc", "agents", "graphs", "population", "vectorstore"]
RULE = ROOT / "population" / "pass_rule.py"


@pytest.mark.parametrize(
    ("score", "threshold", "expected"),
    [
        (0.5, 0.5, True),  # reaching the threshold is a pass
        (0.4999, 0.5, False),
        (1.0, 1.0, True),
        (0.0, 0.0, True),
        (None, 0.0, False),  # never evaluated: not a pass, whatever the threshold
    ],
)
def test_a_score_passes_when_it_reaches_the_threshold(
    score: float | None, threshold: float, expected: bool
) -> None:
    assert passes(score, threshold) is expected


def test_the_skill_matrix_follows_the_rule_and_leaves_missing_cells_to_the_mask() -> None:
    scores = {("a", "t1"): 0.7, ("a", "t2"): 0.69, ("b", "t1"): 0.0}
    solved = skill_matrix(scores, ["a", "b"], ["t1", "t2"], threshold=0.7)
    assert solved.tolist() == [[True, False], [False, False]]
    assert known_matrix(scores, ["a", "b"], ["t1", "t2"]).tolist() == [[True, True], [True, False]]


def _name(node: ast.expr) -> str:
    """The last name of an operand (``record.score`` -> "score"), "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id.lower()
    if isinstance(node, ast.Attribute):
        return node.attr.lower()
    return ""


ORDER = (ast.Gt, ast.GtE, ast.Lt, ast.LtE)


def _is_pass_comparison(node: ast.Compare) -> bool:
    """An order comparison of a score with a threshold, a pass bar or a constant strictly
    inside (0, 1), or of a pass threshold with anything but constants (a range check of the
    setting is no copy)."""
    if not all(isinstance(op, ORDER) for op in node.ops):
        return False
    operands = [node.left, *node.comparators]
    names = [_name(o) for o in operands]
    constants = [o.value for o in operands if isinstance(o, ast.Constant)]
    if any("pass_threshold" in n for n in names):
        return len(constants) < len(operands) - 1
    if not any("score" in n for n in names):
        return False
    bars = [c for c in constants if isinstance(c, float | int) and 0 < c < 1]
    return any("threshold" in n or "pass" in n for n in names) or bool(bars)


def _copies(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare) and _is_pass_comparison(node)
    ]


def test_no_other_module_compares_a_score_with_a_pass_threshold() -> None:
    found = [
        copy
        for folder in PRODUCT
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != RULE
        for copy in _copies(path)
    ]
    assert found == [], "call acdc.population.pass_rule.passes instead:\n" + "\n".join(found)


def test_the_check_sees_a_second_copy() -> None:
    copy = ast.parse("ok = record.score >= ctx.pass_threshold or grade.score > 0.5").body[0]
    assert isinstance(copy, ast.Assign) and isinstance(copy.value, ast.BoolOp)
    left, right = copy.value.values
    assert isinstance(left, ast.Compare) and _is_pass_comparison(left)
    assert isinstance(right, ast.Compare) and _is_pass_comparison(right)
    assert _copies(RULE)  # the rule itself is the one comparison
    check = ast.parse("0.0 <= ctx.pass_threshold <= 1.0").body[0]
    assert isinstance(check, ast.Expr) and isinstance(check.value, ast.Compare)
    assert not _is_pass_comparison(check.value)  # a range check of the setting is no copy
