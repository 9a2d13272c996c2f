"""The expert store: atomic immutable folders, metadata, checksums."""

from pathlib import Path

import pytest
import torch

from acdc.population.experts import CorruptExpertError, ExpertRecord, ExpertStore


def test_saved_experts_carry_metadata_and_verify(store_with_parents):
    store, _ = store_with_parents
    record = store.get("p1")
    assert record.rank == 4 and len(record.checksum) == 64 and record.created_at
    assert store.ids() == ["base", "p1", "p2"]
    assert store.adapter_dir("base") is None and store.load("base") == {}
    assert store.adapter_dir("p1") == store.folder("p1")


def test_a_damaged_adapter_is_detected(store_with_parents):
    store, _ = store_with_parents
    weights = store.folder("p2") / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptExpertError, match="checksum"):
        store.load("p2")
    weights.unlink()
    with pytest.raises(CorruptExpertError, match="missing"):
        store.adapter_dir("p2")


def test_unknown_and_invalid_ids(store_with_parents):
    store, _ = store_with_parents
    with pytest.raises(KeyError, match="no expert 'ghost'.*known: base, p1, p2"):
        store.get("ghost")
    with pytest.raises(ValueError, match="invalid expert id"):
        store.save(
            ExpertRecord(id="../escape"), {"m": (torch.ones(1, 2), torch.ones(2, 1))}, torch.float32
        )


def test_a_crashed_write_leaves_no_expert_and_is_cleaned_up(tmp_path: Path):
    store = ExpertStore(tmp_path / "experts")

    class BoomError(RuntimeError):
        pass

    delta = {"model.layers.0.self_attn.q_proj": (torch.ones(1, 4), torch.ones(4, 1))}
    import acdc.population.experts as experts_module

    original = experts_module.write_adapter

    def failing(*args, **kwargs):
        original(*args, **kwargs)
        raise BoomError("crash after the weights were written")

    experts_module.write_adapter = failing
    try:
        with pytest.raises(BoomError):
            store.save(ExpertRecord(id="x1"), delta, torch.float32)
    finally:
        experts_module.write_adapter = original
    assert not store.exists("x1") and not store.folder("x1").exists()
    assert list(store.root.iterdir()) == []
    saved = store.save(ExpertRecord(id="x1"), delta, torch.float32)
    assert store.exists("x1") and saved.rank == 1
