"""A fake stack for fast graph tests: scripted role replies and a fake population server.

Only the models' *words* are fake. The fake population server speaks the vLLM endpoints
acdc uses (health, models, runtime LoRA load/unload, chat completions) and answers a task
instance correctly or not by a fixed rule, so skill vectors differ between experts; the
role stub writes distinct valid tasks, approves reviews and grades by a rule. Everything
else (breeding, run folder, ChromaDB, graders, checkpoints) is real.
"""

import hashlib
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

from tests.stub_openai import LocalJsonServer, StubOpenAI

SANITY_REPLY = "The answer is that it is a fine and clear thing, as it is in the world."

TOPICS = [
    (
        "Chemical symbols",
        "chemistry",
        "What is the chemical symbol of {x}?",
        ["gold", "iron", "silver"],
    ),
    ("Capital cities", "geography", "What is the capital city of {x}?", ["Japan", "Peru", "Kenya"]),
    (
        "Past tense verbs",
        "english grammar",
        "Give the past tense of the verb '{x}'.",
        ["run", "eat", "fly"],
    ),
    ("Unit conversion", "measurement", "How many metres are in {x} kilometres?", ["3", "7", "12"]),
    ("Planet order", "astronomy", "Which planet is number {x} from the sun?", ["3", "5", "6"]),
    (
        "Opposite words",
        "vocabulary",
        "What is the opposite of the word '{x}'?",
        ["hot", "tall", "early"],
    ),
    (
        "Prime checks",
        "number theory",
        "Is {x} a prime number? Answer yes or no.",
        ["17", "21", "29"],
    ),
    (
        "Music notes",
        "music theory",
        "How many beats does a {x} note last in 4/4 time?",
        ["whole", "half", "quarter"],
    ),
]


def task_draft(n: int, references: dict[str, str]) -> str:
    """A valid TaskDraft JSON on the n-th topic (exact grading, three instances)."""
    name, subject, template, items = TOPICS[n % len(TOPICS)]
    for x in items:
        references[f"{template.format(x=x)} (set {n})"] = f"ref-{n}-{x}"
    return json.dumps(
        {
            "name": f"{name} {n}",
            "description": f"Tests knowledge of {name.lower()} ({subject}).",
            "capability": name.lower(),
            "subject": subject,
            "difficulty": 2,
            "grading": "exact",
            "rubric": "The answer must match the reference exactly.",
            "instances": [
                {
                    "instruction": f"{template.format(x=x)} (set {n})",
                    "reference": f"ref-{n}-{x}",
                    "wrong_answer": f"wrong-{n}-{x}",
                }
                for x in items
            ],
        }
    )


class FakeRoles(StubOpenAI):
    """Scientist, judge and curator replies chosen by the requested output schema."""

    def __init__(self, references: dict[str, str]) -> None:
        self.drafts = itertools.count()
        self.references = references
        super().__init__([], default=self.reply)

    def reply(self, body: dict[str, Any]) -> str:
        schema = body.get("response_format", {}).get("json_schema", {}).get("name", "")
        if schema == "TaskDraft":
            return task_draft(next(self.drafts), self.references)
        if schema == "TaskReview":
            return json.dumps(
                {
                    "reasoning": "fine",
                    "well_formed": True,
                    "solvable": True,
                    "references_correct": True,
                }
            )
        if schema == "NoveltyCheck":
            return json.dumps({"reasoning": "new skill", "interestingly_new": True})
        if schema == "Verdict":
            return json.dumps({"reasoning": "compared", "score": 1.0})
        return "{}"


class FakePopulation(LocalJsonServer):
    """vLLM's endpoints with rule-based answers: expert e solves instance q when
    hash(e, q) is even, and the base model solves every other instance."""

    def __init__(self, references: dict[str, str], port: int = 0, delay: float = 0.0) -> None:
        self.references = references
        self.delay = delay
        self.loaded: set[str] = set()
        self.chats: list[tuple[str, str]] = []
        self.block_model_prefix = ""
        self.truncate: set[str] = set()
        """Models whose task answers are cut at the token limit before their Answer: line."""
        self.busy = 0
        """The next this many task answers are HTTP 503 (a busy server), then answers."""
        """Sanity prompts to experts with this id prefix stall until it is cleared."""
        self.blocked = threading.Event()
        super().__init__(port)

    def respond_get(self, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/health":
            return 200, {}
        if path == "/v1/models":
            data = [{"id": "base", "parent": None}] + [
                {"id": name, "parent": "base"} for name in sorted(self.loaded)
            ]
            return 200, {"data": data}
        return 404, {"error": {"message": path}}

    def respond_at(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/load_lora_adapter":
            self.loaded.add(body["lora_name"])
            return 200, {}
        if path == "/v1/unload_lora_adapter":
            self.loaded.discard(body["lora_name"])
            return 200, {}
        model = body["model"]
        if model != "base" and model not in self.loaded:
            return 404, {"error": {"message": f"model {model} not found"}}
        prompt = body["messages"][-1]["content"]
        if self.busy and any(prompt.startswith(q) for q in self.references):
            with self._lock:
                self.busy -= 1
            return 503, {"error": {"message": "busy"}}
        text = self.answer(model, prompt)
        finish = "stop"
        if model in self.truncate and text.startswith("Answer: "):
            text, finish = f"Let me think step by step. It could be {text[8:]}, or", "length"
        with self._lock:
            self.chats.append((model, prompt))
        return 200, {
            "choices": [{"index": 0, "finish_reason": finish, "message": {"content": text}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 8},
        }

    def answer(self, model: str, prompt: str) -> str:
        """The rule: a fixed sentence for sanity prompts, right or wrong for tasks."""
        known = [q for q in list(self.references) if prompt.startswith(q)]
        instruction = max(known, key=len) if known else None
        if instruction is None:
            while self.block_model_prefix and model.startswith(self.block_model_prefix):
                self.blocked.set()
                time.sleep(0.05)
            return SANITY_REPLY
        if self.delay:
            time.sleep(self.delay)
        digest = int(hashlib.sha256(f"{model}|{instruction}".encode()).hexdigest(), 16)
        solved = digest % 2 == 0 if model != "base" else digest % 3 == 0
        reference = self.references[instruction]
        return f"Answer: {reference if solved else 'something else'}"

    def subject_chats(self) -> list[tuple[str, str]]:
        """Chats that were task instances (not sanity checks)."""
        return [(m, p) for m, p in self.chats if p != "" and not _is_sanity(p)]


def _is_sanity(prompt: str) -> bool:
    from acdc.population.gibberish import sanity_prompts

    return prompt in sanity_prompts()


def seed_references() -> dict[str, str]:
    """Instruction -> reference of the bundled seed tasks (choice: the letter)."""
    from acdc.tasks import load_tasks, seed_tasks_dir

    return {
        i.instruction: i.reference or "" for t in load_tasks(seed_tasks_dir()) for i in t.instances
    }


def fake_settings(
    runs_dir: Path, tiny_base: Path, population: FakePopulation, roles: StubOpenAI
) -> dict[str, object]:
    """Context settings of a small run on the fake stack (2 generations, 2 tasks + the seeds)."""
    from acdc.tasks import load_tasks, seed_tasks_dir

    settings: dict[str, object] = {
        "runs_dir": str(runs_dir),
        "base_model": str(tiny_base),
        "server_url": population.url.removesuffix("/v1"),
        "lora_rank": 8,
        "mutation_keep_rank": 4,
        "initial_population": 2,
        "children_per_generation": 2,
        "archive_size": 3,
        "generations": 2,
        "initial_pool": len(load_tasks(seed_tasks_dir())) + 2,  # the scientist writes two
        "task_batch": 2,
        "reflection_rounds": 0,
    }
    for role in ("scientist", "judge", "curator"):
        settings[f"{role}_base_url"] = roles.url
        settings[f"{role}_model"] = "stub"
    return settings
