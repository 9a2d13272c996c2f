"""Seed preparation errors and fine-tune extraction, on the tiny model."""

from pathlib import Path

import pytest
import torch

from acdc.population.base import BaseWeights
from acdc.population.lora import delta_matrix, read_adapter, write_adapter
from acdc.population.seed import SeedError, check_adapter_fits, extract_finetune, prepare_base


def test_missing_and_wrong_base_paths_are_clear_errors(tmp_path: Path):
    with pytest.raises(SeedError, match="does not exist"):
        prepare_base(tmp_path / "nowhere", tmp_path / "cache")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(SeedError, match="neither an HF folder nor a .gguf"):
        prepare_base(tmp_path / "weights.bin", tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeedError, match="no config.json"):
        prepare_base(tmp_path / "empty", tmp_path / "cache")


def test_a_gguf_that_fails_to_load_leaves_no_cache_folder(tmp_path: Path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(SeedError, match="cannot load GGUF"):
        prepare_base(bad, tmp_path / "cache")
    assert list((tmp_path / "cache" / "base").iterdir()) == []


def test_an_hf_folder_is_used_in_place(tiny_base: Path, tmp_path: Path):
    assert prepare_base(tiny_base, tmp_path / "cache") == tiny_base


def test_an_adapter_for_another_base_is_refused(tiny_base: Path, tmp_path: Path):
    module = "model.layers.0.self_attn.q_proj"
    write_adapter(
        tmp_path,
        {module: (torch.ones(2, 99), torch.ones(64, 2))},
        base_model="x",
        dtype=torch.float32,
    )
    with pytest.raises(SeedError, match="is 64x99 but the base .* has 64x64"):
        check_adapter_fits(tmp_path, tiny_base)
    other = tmp_path / "other"
    other.mkdir()
    write_adapter(
        other,
        {"model.layers.7.self_attn.q_proj": (torch.ones(2, 64), torch.ones(64, 2))},
        base_model="x",
        dtype=torch.float32,
    )
    with pytest.raises(SeedError, match="not in base"):
        check_adapter_fits(other, tiny_base)


def test_a_full_finetune_becomes_a_servable_adapter(tiny_base: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_base))
    gen = torch.Generator().manual_seed(0)
    module = "model.layers.1.mlp.up_proj"
    low_rank = torch.randn(128, 2, generator=gen) @ torch.randn(2, 64, generator=gen) * 0.01
    with torch.no_grad():
        dict(model.named_parameters())[module + ".weight"].add_(low_rank)
        model.model.norm.weight.mul_(1.5)  # a norm change must not leak into the adapter
    model.save_pretrained(str(tmp_path / "finetune"))

    adapter = extract_finetune(tmp_path / "finetune", tiny_base, tmp_path / "cache", max_rank=8)
    again = extract_finetune(tmp_path / "finetune", tiny_base, tmp_path / "cache", max_rank=8)
    assert again == adapter
    delta = read_adapter(adapter)
    assert not any("norm" in m or "embed" in m or "lm_head" in m for m in delta)
    torch.testing.assert_close(delta_matrix(delta[module]), low_rank, atol=1e-4, rtol=1e-3)
    check_adapter_fits(adapter, tiny_base)
    assert BaseWeights(tiny_base).shape(module) == (128, 64)
