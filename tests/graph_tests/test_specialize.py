"""The specialize mutation on a tiny real model: it learns its niche, reproducibly, on record."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from acdc.population.base import BaseWeights
from acdc.population.breeding import Breeder
from acdc.population.experts import ExpertRecord, ExpertStore
from acdc.population.finetune import Example, encode
from acdc.population.lora import LoraDelta, delta_matrix
from acdc.population.operators import registry
from acdc.population.operators.linear import LinearCrossover
from acdc.population.operators.specialize import Specialize, choose_niche

NICHE = (
    ("What is the capital of France?", "Answer: Paris"),
    ("Which city is the capital of Italy?", "Answer: Rome"),
    ("Name the capital of Spain.", "Answer: Madrid"),
    ("What is the capital city of Japan?", "Answer: Tokyo"),
    ("The capital of Egypt is which city?", "Answer: Cairo"),
    ("What is the capital of Peru?", "Answer: Lima"),
)


def _store(root: Path, base: BaseWeights) -> ExpertStore:
    """A store with the base and one small random parent ``p`` (rank 4)."""
    store = ExpertStore(root)
    store.add_base("base", base.name)
    gen = torch.Generator().manual_seed(7)
    delta: LoraDelta = {}
    for module in base.modules:
        out_features, in_features = base.shape(module) or (0, 0)
        a = torch.randn(4, in_features, generator=gen) * 0.05
        b = torch.randn(out_features, 4, generator=gen) * 0.05
        delta[module] = (a, b)
    store.save(ExpertRecord(id="p", base_model=str(base.folder)), delta, torch.float32)
    return store


def _breeder(store: ExpertStore, base: BaseWeights, **params: object) -> Breeder:
    mutation = registry.create(
        "specialize",
        "mutation",
        niche="geography",
        examples=NICHE,
        steps=30,
        learning_rate=5e-3,
        rank=8,
        **params,
    )
    return Breeder(
        store=store,
        base=base,
        crossover=LinearCrossover(),
        mutation=mutation,
        rank_cap=16,
        dtype=torch.float32,
    )


def niche_loss(base_dir: Path, delta: LoraDelta) -> float:
    """Mean answer-token loss of ``base + delta`` on the niche, computed independently."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    with torch.no_grad():
        for module, factors in delta.items():
            model.get_submodule(module).weight += delta_matrix(factors)
        losses = []
        for prompt, answer in NICHE:
            ids, labels = encode(tokenizer, Example(prompt, answer), 256)
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            losses.append(float(out.loss))
    return sum(losses) / len(losses)


def test_the_child_is_better_than_its_parent_on_the_niche(chat_base: Path, tmp_path: Path) -> None:
    base = BaseWeights(chat_base)
    store = _store(tmp_path / "experts", base)
    child = _breeder(store, base).breed(["p"], seed=3, generation=1)
    before = niche_loss(chat_base, store.load("p"))
    after = niche_loss(chat_base, store.load(child.id))  # the saved child, rank-capped
    assert after < before - 0.5, (before, after)
    assert child.training is not None
    assert child.training["loss_after"] == pytest.approx(after, abs=1e-3)
    assert child.rank <= 16


def test_expert_json_records_the_niche_examples_steps_and_loss(
    chat_base: Path, tmp_path: Path
) -> None:
    base = BaseWeights(chat_base)
    store = _store(tmp_path / "experts", base)
    child = _breeder(store, base).breed(["p"], seed=3, generation=1)
    saved = json.loads((store.folder(child.id) / "expert.json").read_text())
    training = saved["training"]
    assert training["niche"] == "geography"
    assert training["examples"] == len(NICHE)
    assert training["steps"] == 30 and len(training["losses"]) == 30
    assert training["loss_after"] < training["loss_before"]
    operator = saved["operators"][-1]
    assert operator["name"] == "specialize"
    assert [tuple(pair) for pair in operator["params"]["examples"]] == list(NICHE)


def test_the_same_seed_gives_the_same_bytes(chat_base: Path, tmp_path: Path) -> None:
    base = BaseWeights(chat_base)
    first = _breeder(_store(tmp_path / "a", base), base).breed(["p"], seed=5, generation=1)
    second = _breeder(_store(tmp_path / "b", base), base).breed(["p"], seed=5, generation=1)
    other = _breeder(_store(tmp_path / "c", base), base).breed(["p"], seed=6, generation=1)
    weights = "adapter_model.safetensors"
    assert first.id == second.id and first.checksum == second.checksum
    assert (tmp_path / "a" / first.id / weights).read_bytes() == (
        tmp_path / "b" / second.id / weights
    ).read_bytes()
    assert other.checksum != first.checksum


def test_specialize_is_a_registered_mutation_and_refuses_to_run_without_examples(
    chat_base: Path,
) -> None:
    assert "specialize" in registry.names("mutation")
    operator = Specialize()
    with pytest.raises(ValueError, match="needs examples of a niche"):
        operator.apply(
            delta={}, base=BaseWeights(chat_base), generator=torch.Generator().manual_seed(0)
        )


def test_prompt_tokens_are_not_trained_on(chat_base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(chat_base))
    ids, labels = encode(tokenizer, Example("Q?", "Answer: A"), 256)
    trained = [i for i, label in zip(ids, labels, strict=True) if label != -100]
    assert tokenizer.decode(trained) == "Answer: A<|im_end|>\n"
    assert len(ids) == len(labels)


def test_the_niche_is_the_capability_passed_most_beyond_the_archive() -> None:
    capabilities = ["math", "math", "geo", "geo", "code"]
    solved = np.array(
        [
            [True, True, False, True, False],  # math 2, geo 1, code 0
            [True, True, False, False, True],  # math 2, geo 0, code 1
            [True, False, False, False, False],  # math 1
        ]
    )
    # Means over the rows: math 5/3, geo 1/3, code 1/3.
    assert choose_niche(solved, capabilities, 0) == "geo"  # margins: math 1/3, geo 2/3
    assert choose_niche(solved, capabilities, 1) == "code"  # margins: math 1/3, code 2/3
    assert choose_niche(solved, capabilities, 2) == "math"  # its only pass, margin -2/3
    assert choose_niche(np.zeros((2, 5), dtype=bool), capabilities, 0) is None
