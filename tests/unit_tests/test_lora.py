"""LoRA file I/O: PEFT compatibility, round trips, and adapters vLLM cannot serve."""

import json
from pathlib import Path

import pytest
import torch

from acdc.population.base import BaseWeights
from acdc.population.lora import AdapterError, delta_matrix, pad_rank, read_adapter, write_adapter


def test_reading_a_peft_adapter_folds_its_scaling(tiny_base: Path, tmp_path: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_base))
    config = LoraConfig(r=4, lora_alpha=12, target_modules=["q_proj", "down_proj"])
    peft_model = get_peft_model(model, config)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    merged = peft_model.merge_and_unload()

    delta = read_adapter(tmp_path / "adapter")
    base = BaseWeights(tiny_base)
    assert len(delta) == 4  # q_proj and down_proj in 2 layers
    for module, factors in delta.items():
        expected = dict(merged.named_parameters())[module + ".weight"].detach()
        torch.testing.assert_close(base.weight(module) + delta_matrix(factors), expected)


def test_write_then_read_round_trips_and_is_deterministic(tmp_path: Path):
    gen = torch.Generator().manual_seed(1)
    delta = {
        "model.layers.0.self_attn.q_proj": (
            torch.randn(2, 8, generator=gen),
            torch.randn(8, 2, generator=gen),
        ),
        "model.layers.0.mlp.up_proj": (
            torch.randn(3, 8, generator=gen),
            torch.randn(16, 3, generator=gen),
        ),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_adapter(tmp_path / "a", delta, base_model="x", dtype=torch.float32)
    second = write_adapter(tmp_path / "b", delta, base_model="x", dtype=torch.float32)
    assert first == second
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["r"] == config["lora_alpha"] == 3
    assert config["target_modules"] == ["q_proj", "up_proj"]
    back = read_adapter(tmp_path / "a")
    for module, factors in delta.items():
        torch.testing.assert_close(delta_matrix(back[module]), delta_matrix(factors))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"bias": "all"}, "biases"),
        ({"peft_type": "IA3"}, "not LORA"),
    ],
)
def test_adapters_vllm_cannot_serve_are_refused(tmp_path: Path, change: dict, message: str):
    delta = {"model.layers.0.self_attn.q_proj": (torch.ones(1, 4), torch.ones(4, 1))}
    write_adapter(tmp_path, delta, base_model="x", dtype=torch.float32)
    config_path = tmp_path / "adapter_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), **change}))
    with pytest.raises(AdapterError, match=message):
        read_adapter(tmp_path)


def test_missing_or_corrupt_files_are_clear_errors(tmp_path: Path):
    with pytest.raises(AdapterError, match="missing adapter_config.json"):
        read_adapter(tmp_path)
    delta = {"model.layers.0.self_attn.q_proj": (torch.ones(1, 4), torch.ones(4, 1))}
    write_adapter(tmp_path, delta, base_model="x", dtype=torch.float32)
    (tmp_path / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(AdapterError, match="unreadable"):
        read_adapter(tmp_path)


def test_pad_rank_keeps_the_product():
    a, b = torch.randn(2, 5), torch.randn(6, 2)
    pa, pb = pad_rank(a, b, 8)
    assert pa.shape == (8, 5) and pb.shape == (6, 8)
    torch.testing.assert_close(pb @ pa, b @ a)
