"""A short LoRA fine-tune of an expert on instruction/answer examples, on the CPU.

Used by the ``specialize`` mutation (an expert trained on its own graded answers in one
niche) and by ``acdc seed --from-data`` (a seed trained on a user's file). The expert's
delta is folded into the base weights, PEFT puts a fresh LoRA of ``rank`` on the same
projections every expert adapts, and AdamW trains it for ``steps`` steps on the answer
tokens only (the prompt is context, not a target). The result is the trained LoRA
alone; the caller adds it to the expert's delta and recompresses to the rank cap.

Deterministic with its seed: the LoRA initialization and the batch order come from it,
and the model trains in float32 without dropout, so one seed gives the same bytes on
the same machine and torch build.
"""

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from acdc.population.base import LORA_TARGETS
from acdc.population.lora import LoraDelta, delta_matrix

log = logging.getLogger(__name__)

IGNORE = -100
"""Label of prompt and padding tokens: no loss on them."""
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class Example:
    """One training pair: the user message as the expert sees it, and the answer to learn."""

    prompt: str
    answer: str


@dataclass(frozen=True)
class FinetuneSettings:
    """How long and how hard to train; CPU-friendly defaults (seconds for a 135M model)."""

    steps: int = 24
    learning_rate: float = 5e-4
    rank: int = 8
    batch_size: int = 4
    max_length: int = 384

    def __post_init__(self) -> None:
        for name in ("steps", "rank", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"fine-tune {name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"fine-tune learning_rate must be > 0, got {self.learning_rate}")


@dataclass(frozen=True)
class FinetuneResult:
    """The trained LoRA (scaling folded into B) and the loss on its examples."""

    delta: LoraDelta
    losses: list[float]
    """Training loss of each step, on that step's batch."""
    loss_before: float
    """Mean loss over all examples before training (the expert as it was)."""
    loss_after: float
    """Mean loss over all examples after training."""

    def report(self) -> dict[str, Any]:
        """What ``expert.json`` records about the training."""
        return {
            "steps": len(self.losses),
            "loss_before": round(self.loss_before, 4),
            "loss_after": round(self.loss_after, 4),
            "losses": [round(v, 4) for v in self.losses],
        }


def finetune(
    base_dir: Path,
    delta: LoraDelta,
    examples: Sequence[Example],
    settings: FinetuneSettings,
    seed: int,
) -> FinetuneResult:
    """Train a LoRA on top of ``base + delta`` on ``examples``; see the module docstring.

    Raises:
        ValueError: No examples, or no example keeps an answer token within max_length.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not examples:
        raise ValueError("a fine-tune needs at least one example")
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    rows = [encode(tokenizer, e, settings.max_length) for e in examples]
    rows = [r for r in rows if any(label != IGNORE for label in r[1])]
    if not rows:
        raise ValueError(f"every example's prompt fills max_length {settings.max_length} tokens")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        with torch.no_grad():
            for module, factors in delta.items():
                weight = model.get_submodule(module).weight
                assert isinstance(weight, torch.Tensor)  # a Linear's weight, for mypy
                weight += delta_matrix(factors)
        config = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.rank,
            lora_dropout=0.0,
            target_modules=list(LORA_TARGETS),
            bias="none",
        )
        peft_model = get_peft_model(model, config)
        peft_model.eval()  # no dropout anywhere: training is deterministic
        loss_before = _mean_loss(peft_model, rows, settings.batch_size, pad)
        trainable = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
        order = random.Random(seed)
        queue: list[int] = []
        losses = []
        for _ in range(settings.steps):
            batch: list[tuple[list[int], list[int]]] = []
            while len(batch) < min(settings.batch_size, len(rows)):
                if not queue:
                    queue = list(range(len(rows)))
                    order.shuffle(queue)
                batch.append(rows[queue.pop()])
            loss = _loss(peft_model, batch, pad)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            losses.append(float(loss.detach()))
        loss_after = _mean_loss(peft_model, rows, settings.batch_size, pad)
    trained = _lora_factors(peft_model)
    log.info("fine-tuned %d steps: loss %.3f -> %.3f", settings.steps, loss_before, loss_after)
    return FinetuneResult(trained, losses, loss_before, loss_after)


def encode(tokenizer: Any, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer in the chat format, and labels masking the prompt.

    The prompt part is exactly what a server renders for a request (the chat template
    with the generation prompt), so the expert learns answers in the setting it is asked.
    """
    user = [{"role": "user", "content": example.prompt}]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
        turn = [*user, {"role": "assistant", "content": example.answer}]
        whole = tokenizer.apply_chat_template(turn, tokenize=False)
        answer = whole[len(prompt) :] if whole.startswith(prompt) else example.answer
    else:
        prompt, answer = example.prompt + "\n", example.answer
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not getattr(tokenizer, "chat_template", None) and tokenizer.eos_token_id is not None:
        answer_ids = [*answer_ids, tokenizer.eos_token_id]
    ids = (list(prompt_ids) + list(answer_ids))[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + list(answer_ids))[:max_length]
    return ids, labels


def _loss(model: Any, batch: Sequence[tuple[list[int], list[int]]], pad: int) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens of a right-padded batch."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.tensor([row + [pad] * (width - len(row)) for row, _ in batch])
    labels = torch.tensor([lab + [IGNORE] * (width - len(lab)) for _, lab in batch])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row, _ in batch])
    loss: torch.Tensor = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    return loss


def _mean_loss(
    model: Any, rows: Sequence[tuple[list[int], list[int]]], batch_size: int, pad: int
) -> float:
    """Loss over all rows, weighted by their answer tokens."""
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            tokens = sum(sum(label != IGNORE for label in lab[1:]) for _, lab in batch)
            total += float(_loss(model, batch, pad)) * tokens
            count += tokens
    return total / count if count else 0.0


def _lora_factors(model: Any) -> LoraDelta:
    """The trained LoRA of every adapted module as (A, B), scaling folded into B."""
    trained: LoraDelta = {}
    for name, layer in model.named_modules():
        if not hasattr(layer, "lora_A") or "default" not in layer.lora_A:
            continue
        module = name.removeprefix(_PEFT_PREFIX)
        a = layer.lora_A["default"].weight.detach().clone()
        b = layer.lora_B["default"].weight.detach().clone() * layer.scaling["default"]
        trained[module] = (a, b)
    return trained
