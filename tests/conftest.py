"""Shared fixtures: a tiny random Llama base model and adapters over it."""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from acdc.population.base import BaseWeights
from acdc.population.experts import ExpertRecord, ExpertStore
from acdc.population.lora import LoraDelta


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with hidden size 64, saved as safetensors (random weights)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama(vocab_size=256, max_positions=128).save_pretrained(str(folder))
    return folder


def tiny_llama(vocab_size: int, max_positions: int) -> Any:
    """A 2-layer Llama with hidden size 64 and seeded random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def chat_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (hidden 64) with a byte-level tokenizer and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    specials = ["<|im_start|>", "<|im_end|>", "<pad>"]
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    folder = tmp_path_factory.mktemp("tiny-chat-llama")
    tiny_llama(vocab_size=len(vocab) + len(specials), max_positions=256).save_pretrained(
        str(folder)
    )
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture
def random_delta() -> Callable[..., LoraDelta]:
    """Build a random delta of a given rank over every target module of a base."""

    def make(base: BaseWeights, rank: int, seed: int, scale: float = 0.05) -> LoraDelta:
        gen = torch.Generator().manual_seed(seed)
        delta: LoraDelta = {}
        for module in base.modules:
            out_features, in_features = base.shape(module) or (0, 0)
            a = torch.randn(rank, in_features, generator=gen) * scale
            b = torch.randn(out_features, rank, generator=gen) * scale
            delta[module] = (a, b)
        return delta

    return make


@pytest.fixture
def store_with_parents(
    tmp_path: Path, tiny_base: Path, random_delta: Callable[..., LoraDelta]
) -> tuple[ExpertStore, BaseWeights]:
    """An expert store holding the base and two random float32 parents p1, p2 of rank 4."""
    base = BaseWeights(tiny_base)
    store = ExpertStore(tmp_path / "experts")
    store.add_base("base", base.name)
    for index, name in enumerate(("p1", "p2")):
        record = ExpertRecord(id=name, base_model=str(tiny_base))
        store.save(record, random_delta(base, 4, seed=index), torch.float32)
    return store, base


@pytest.fixture(scope="session")
def seed_index_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed ChromaDB folder holding the seed tasks, embedded once with real MiniLM.

    Tests take a copy (:func:`seed_index`) instead of embedding the seeds again: the
    copy is the same store, for a hundredth of the CPU time.
    """
    from acdc.tasks import load_tasks, seed_tasks_dir
    from acdc.vectorstore.tasks import TaskIndex

    folder = tmp_path_factory.mktemp("seed-index") / "chroma"
    with TaskIndex(folder) as index:
        for task in load_tasks(seed_tasks_dir()):
            index.upsert(task)
    return folder


@pytest.fixture
def seed_index(tmp_path: Path, seed_index_folder: Path) -> Path:
    """This test's own copy of the seed index folder, to open and change."""
    return Path(shutil.copytree(seed_index_folder, tmp_path / "chroma"))
