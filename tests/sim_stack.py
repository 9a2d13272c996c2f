"""A scripted world for testing the coevolution dynamics without an LLM.

Experts have a latent skill level per capability; tasks have a capability and a level.
An expert passes an instance when its skill plus a fixed per-(expert, instance) noise
reaches the level. Breeding moves skills: a child's skill is its parents' mean plus
noise drawn from a hash of its id, read from the ``expert.json`` the real breeder wrote.
The scripted scientist writes tasks whose level it can raise (harder), lower (easier),
or that open another capability (novel); its texts are as alike as real variants are,
so an embedding gate that compares a variant with its parent sees a near-copy.

Only words are scripted: the run, breeding, ChromaDB, graders and LangGraph are real.
"""

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tests.fake_stack import SANITY_REPLY, FakePopulation
from tests.stub_openai import StubOpenAI

CAPABILITIES: dict[str, tuple[float, str]] = {
    # capability -> (the seed's skill, question template)
    "arithmetic": (1.2, "Add the two numbers {n} and {m} and give the sum."),
    "geography": (1.0, "Name the country whose capital city is listed as item {n} of {m}."),
    "spelling": (0.9, "Spell the word number {n} backwards, letter by letter, from list {m}."),
    "chemistry": (1.1, "Give the chemical symbol of element number {n} in table row {m}."),
    "music": (0.8, "How many beats does note value {n} last in a bar of {m}/4 time?"),
    "astronomy": (1.0, "Which planet is number {n} from the sun in system model {m}?"),
    "grammar": (0.9, "Give the past tense of irregular verb {n} from lesson {m}."),
    "logic": (1.0, "Is statement {n} of puzzle {m} true or false under the given rules?"),
}
_LISTED = re.compile(r"^- ([a-z]+) \(\d+ tasks?\)$", re.MULTILINE)
"""Capabilities named in the pool summary of the scientist's create prompt."""
_TAG = re.compile(r"\[(?P<cap>[a-z]+) level (?P<level>-?\d+\.\d)\]")
SKILL_NOISE = 0.5
"""Std of a child's skill change per capability (breeding moves skills); a slow world
passes a smaller one to ``SimWorld``."""
INSTANCE_NOISE = 0.25
"""Std of the fixed per-(expert, instance) luck."""


def _unit(*parts: object) -> float:
    """A deterministic standard normal draw from ``parts``."""
    seed = int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)
    return float(np.random.default_rng(seed).standard_normal())


def reference_for(instruction: str) -> str:
    """The right answer of an instruction (both the scientist and the world know it)."""
    return "r" + hashlib.sha256(instruction.encode()).hexdigest()[:8]


def instruction(capability: str, level: float, item: int) -> str:
    """A tagged question; the tag tells the world its capability and level."""
    template = CAPABILITIES[capability][1]
    return f"[{capability} level {level:.1f}] " + template.format(n=item, m=item + 3)


def task_draft(capability: str, level: float, salt: int) -> dict[str, Any]:
    """A TaskDraft of three instances of ``capability`` at ``level``."""
    questions = [instruction(capability, level, salt * 10 + k) for k in range(3)]
    return {
        "name": f"{capability} at level {level:.1f}",
        "description": f"Tests {capability} questions at difficulty level {level:.1f}.",
        "capability": capability,
        "subject": capability,
        "difficulty": max(1, min(5, round(level))),
        "grading": "exact",
        "rubric": "The answer must match the reference exactly.",
        "instances": [
            {"instruction": q, "reference": reference_for(q), "wrong_answer": "no idea"}
            for q in questions
        ],
    }


def write_seed_tasks(folder: Path, capabilities: list[str], level: float) -> Path:
    """Hand-written seed tasks of the world, one per capability, all at ``level``."""
    return write_seed_levels(folder, [(capability, level) for capability in capabilities])


def write_seed_levels(folder: Path, tasks: list[tuple[str, float]]) -> Path:
    """Hand-written seed tasks of the world: one per (capability, level) pair."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, (capability, level) in enumerate(tasks):
        draft = task_draft(capability, level, n)
        name = f"seed-{capability}-{n}"
        task = {
            **{k: v for k, v in draft.items()},
            "id": name,
            "adaptation": "seed",
            "generation": 0,
            "instances": [
                {"id": f"i{k}", **inst} for k, inst in enumerate(draft["instances"], start=1)
            ],
        }
        (folder / f"{name}.json").write_text(json.dumps(task))
    return folder


class SimScientist(StubOpenAI):
    """Role replies: drafts by the adaptation asked for, approving reviews and curators."""

    def __init__(self, harder_step: float = 0.8) -> None:
        self.harder_step = harder_step
        self.asked: Counter[str] = Counter()
        super().__init__([], default=self.reply)

    def reply(self, body: dict[str, Any]) -> str:
        schema = body.get("response_format", {}).get("json_schema", {}).get("name", "")
        prompt = body["messages"][-1]["content"]
        if schema == "TaskDraft":
            return json.dumps(self.draft(prompt))
        if schema == "TaskReview":
            verdict = {"well_formed": True, "solvable": True, "references_correct": True}
            return json.dumps({"reasoning": "checked", **verdict})
        if schema == "NoveltyCheck":
            return json.dumps({"reasoning": "another capability", "interestingly_new": True})
        return "{}"

    def draft(self, prompt: str) -> dict[str, Any]:
        """Harder/easier: the parent's capability a step up/down; else a new capability."""
        tags = [(m["cap"], float(m["level"])) for m in _TAG.finditer(prompt)]
        with self._lock:  # the same prompt asked twice gets a second, different draft
            self.asked[prompt] += 1
            digest = hashlib.sha256(f"{prompt}|{self.asked[prompt]}".encode()).hexdigest()
        salt = int(digest[:6], 16) % 1000
        if tags and ("HARDER version" in prompt or "EASIER version" in prompt):
            capability, level = tags[0]
            step = self.harder_step + 0.1 * (salt % 3)  # variants of one level spread out
            step = step if "HARDER version" in prompt else -step
            return task_draft(capability, level + step, salt)
        seen = {cap for cap, _ in tags} | set(_LISTED.findall(prompt))
        fresh = [c for c in CAPABILITIES if c not in seen] or list(CAPABILITIES)
        return task_draft(fresh[salt % len(fresh)], 1.0, salt)


class SimWorld(FakePopulation):
    """The population server of the world: answers by latent skill against task level."""

    def __init__(self, skill_noise: float = SKILL_NOISE) -> None:
        self.paths: dict[str, Path] = {}
        self.skill_noise = skill_noise
        super().__init__({})

    def respond_at(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/load_lora_adapter":
            self.paths[body["lora_name"]] = Path(body["lora_path"])
        return super().respond_at(path, body)

    def skill(self, expert: str, capability: str) -> float:
        """Latent skill: the seed's, or the parents' mean plus this child's own change."""
        if expert == "base":
            return CAPABILITIES[capability][0]
        folder = self.paths[expert]
        parents = json.loads((folder / "expert.json").read_text())["parents"]
        for parent in parents:
            self.paths.setdefault(parent, folder.parent / parent)
        inherited = sum(self.skill(p, capability) for p in parents) / len(parents)
        return inherited + self.skill_noise * _unit(expert, capability)

    def passes(self, expert: str, question: str) -> bool:
        """Whether ``expert`` answers the tagged ``question`` right."""
        tag = _TAG.search(question)
        if tag is None:
            return False
        luck = INSTANCE_NOISE * _unit(expert, question)
        return self.skill(expert, tag["cap"]) + luck >= float(tag["level"])

    def answer(self, model: str, prompt: str) -> str:
        tag = _TAG.search(prompt)
        if tag is None:
            return SANITY_REPLY
        question = prompt[tag.start() :].split("\n")[0]
        return f"Answer: {reference_for(question) if self.passes(model, question) else 'no idea'}"

    def coverage(self, experts: list[str], questions: list[str]) -> float:
        """Share of tagged ``questions`` that some expert's latent skill reaches (no luck)."""
        levels = [(t["cap"], float(t["level"])) for q in questions if (t := _TAG.search(q))]
        reached = [any(self.skill(e, c) >= level for e in experts) for c, level in levels]
        return sum(reached) / max(1, len(reached))
