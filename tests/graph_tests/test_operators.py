"""Operator math on a tiny random Llama: crossover, mutation, rank caps, reproducibility."""

from pathlib import Path

import pytest
import torch

from acdc.population.breeding import Breeder
from acdc.population.experts import ExpertStore
from acdc.population.lora import delta_matrix, read_adapter, recompress
from acdc.population.operators import registry
from acdc.population.operators.linear import LinearCrossover
from acdc.population.operators.svd_noise import SvdNoiseMutation, top_singular


def dense(store: ExpertStore, expert_id: str) -> dict[str, torch.Tensor]:
    return {m: delta_matrix(f) for m, f in store.load(expert_id).items()}


def test_linear_crossover_is_the_weighted_average_of_parent_deltas(store_with_parents):
    store, base = store_with_parents
    crossover = LinearCrossover(weight_std=0.1)
    breeder = Breeder(store, base, crossover, None, rank_cap=8, dtype=torch.float32)
    child = breeder.breed(["p1", "p2"], seed=7, generation=1)

    weights = crossover.weights(2, torch.Generator().manual_seed(7))
    assert abs(float(weights.sum()) - 1.0) < 1e-9
    assert not torch.allclose(weights, torch.full((2,), 0.5, dtype=weights.dtype))
    p1, p2, got = dense(store, "p1"), dense(store, "p2"), dense(store, child.id)
    for module in base.modules:
        expected = float(weights[0]) * p1[module] + float(weights[1]) * p2[module]
        # Parent ranks 4 + 4 fit the cap of 8, so the result is exact.
        torch.testing.assert_close(got[module], expected, atol=1e-6, rtol=1e-5)
    assert child.rank == 8
    assert child.parents == ["p1", "p2"]
    assert [op["name"] for op in child.operators] == ["linear"]


def test_linear_crossover_under_a_small_rank_cap_is_the_best_low_rank_approximation(
    store_with_parents,
):
    store, base = store_with_parents
    crossover = LinearCrossover()
    breeder = Breeder(store, base, crossover, None, rank_cap=2, dtype=torch.float32)
    child = breeder.breed(["p1", "p2"], seed=3, generation=1)
    weights = crossover.weights(2, torch.Generator().manual_seed(3))
    p1, p2, got = dense(store, "p1"), dense(store, "p2"), dense(store, child.id)
    for module in base.modules:
        full = float(weights[0]) * p1[module] + float(weights[1]) * p2[module]
        u, s, vh = torch.linalg.svd(full)
        best = (u[:, :2] * s[:2]) @ vh[:2]
        torch.testing.assert_close(got[module], best, atol=1e-5, rtol=1e-4)
        assert torch.linalg.matrix_rank(got[module]) == 2


def test_the_child_records_what_the_rank_cap_cut_away(store_with_parents):
    store, base = store_with_parents
    crossover = LinearCrossover()
    fits = Breeder(store, base, crossover, None, rank_cap=8, dtype=torch.float32)
    cut = Breeder(store, base, crossover, None, rank_cap=2, dtype=torch.float32)
    exact = fits.breed(["p1", "p2"], seed=3, generation=1)  # rank 4 + 4 fits under 8
    capped = cut.breed(["p1", "p2"], seed=3, generation=1)
    assert exact.rank_cap_error is not None and exact.rank_cap_error < 1e-5
    weights = crossover.weights(2, torch.Generator().manual_seed(3))
    p1, p2 = dense(store, "p1"), dense(store, "p2")
    dropped = whole = 0.0
    for module in base.modules:  # the expectation from dense SVDs, not from the breeder
        s = torch.linalg.svdvals(float(weights[0]) * p1[module] + float(weights[1]) * p2[module])
        dropped, whole = dropped + float((s[2:] ** 2).sum()), whole + float((s**2).sum())
    assert capped.rank_cap_error == pytest.approx((dropped / whole) ** 0.5, rel=1e-3)
    assert store.get(capped.id).rank_cap_error == capped.rank_cap_error  # in expert.json


def test_crossover_with_the_base_model_halves_toward_zero(store_with_parents):
    store, base = store_with_parents
    crossover = LinearCrossover(weight_std=0.0)
    breeder = Breeder(store, base, crossover, None, rank_cap=8, dtype=torch.float32)
    child = breeder.breed(["p1", "base"], seed=0, generation=1)
    p1, got = dense(store, "p1"), dense(store, child.id)
    for module in base.modules:
        torch.testing.assert_close(got[module], 0.5 * p1[module], atol=1e-6, rtol=1e-5)


def test_mutation_changes_exactly_the_top_k_singular_values(store_with_parents):
    store, base = store_with_parents
    keep = 3
    mutation = SvdNoiseMutation(sigma=0.5, keep_rank=keep, svd="exact")
    parent = store.load("p1")
    generator = torch.Generator().manual_seed(11)
    mutated = mutation.apply(delta=parent, base=base, generator=generator)

    # Replay the draws: per module, the SVD is deterministic, then k normal draws.
    replay = torch.Generator().manual_seed(11)
    for module in base.modules:
        before = base.weight(module) + delta_matrix(parent[module])
        after = base.weight(module) + delta_matrix(mutated[module])
        s_before = torch.linalg.svdvals(before)
        noise = 0.5 * torch.randn(keep, generator=replay, dtype=s_before.dtype)
        expected = s_before.clone()
        expected[:keep] = (s_before[:keep] + noise).clamp_min(0.0)
        expected, _ = expected.sort(descending=True)
        torch.testing.assert_close(torch.linalg.svdvals(after), expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(s_before[:keep], torch.linalg.svdvals(after)[:keep])
        # The change has rank k: only k singular directions moved.
        assert torch.linalg.matrix_rank(after - before, atol=1e-5) == keep


def test_mutation_leaves_norms_embeddings_and_lm_head_alone(store_with_parents):
    _, base = store_with_parents
    mutated = SvdNoiseMutation(keep_rank=2).apply(
        delta={}, base=base, generator=torch.Generator().manual_seed(0)
    )
    assert set(mutated) == set(base.modules)
    assert not any("norm" in m or "embed" in m or "lm_head" in m for m in mutated)
    assert len(base.modules) == 2 * 7


def test_lowrank_svd_matches_exact_top_singular_values():
    # Trained weights have decaying spectra; the randomized method relies on that.
    gen = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(96, 64, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(80, 64, generator=gen))
    spectrum = 10.0 * 0.85 ** torch.arange(64, dtype=torch.float32)
    matrix = (u * spectrum) @ v.T
    u_fast, s_fast, vh_fast = top_singular(matrix, 4, method="lowrank", generator=gen)
    u_exact, s_exact, vh_exact = top_singular(matrix, 4, method="exact", generator=gen)
    torch.testing.assert_close(s_fast, s_exact, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        (u_fast * s_fast) @ vh_fast, (u_exact * s_exact) @ vh_exact, atol=1e-3, rtol=1e-3
    )


def test_breeding_is_reproducible_bit_for_bit(tmp_path: Path, store_with_parents):
    store, base = store_with_parents
    make = lambda s: Breeder(  # noqa: E731
        s, base, LinearCrossover(), SvdNoiseMutation(keep_rank=2), rank_cap=8
    )
    first = make(store).breed(["p1", "p2"], seed=5, generation=2)

    other = ExpertStore(tmp_path / "other")
    for name in ("p1", "p2"):
        folder = store.folder(name)
        record = store.get(name)
        other.save(record, read_adapter(folder), torch.float32)
    again = make(other).breed(["p1", "p2"], seed=5, generation=2)
    different = make(other).breed(["p1", "p2"], seed=6, generation=2)

    assert again.id == first.id
    assert again.checksum == first.checksum
    assert (other.folder(again.id) / "adapter_model.safetensors").read_bytes() == (
        store.folder(first.id) / "adapter_model.safetensors"
    ).read_bytes()
    assert different.checksum != first.checksum


def test_breeding_again_finds_the_saved_child(store_with_parents):
    store, base = store_with_parents
    breeder = Breeder(store, base, LinearCrossover(), None, rank_cap=8)
    first = breeder.breed(["p1"], seed=1, generation=1)
    mtime = (store.folder(first.id) / "expert.json").stat().st_mtime_ns
    second = breeder.breed(["p1"], seed=1, generation=1)
    assert second == first
    assert (store.folder(first.id) / "expert.json").stat().st_mtime_ns == mtime


def test_recompress_is_exact_when_the_rank_fits():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 20, generator=gen), torch.randn(30, 3, generator=gen)
    new_a, new_b = recompress(a, b, 8)
    assert new_a.shape == (3, 20) and new_b.shape == (30, 3)
    torch.testing.assert_close(new_b @ new_a, b @ a, atol=1e-5, rtol=1e-5)


def test_registry_lists_valid_names_for_unknown_operators():
    assert {"linear", "ties", "dare_ties", "slerp"} <= set(registry.names("crossover"))
    assert registry.names("mutation") == ["specialize", "svd_noise"]
    with pytest.raises(KeyError, match="valid: dare_ties, linear, slerp, ties"):
        registry.create("nope", "crossover")
    with pytest.raises(KeyError, match="unknown mutation operator 'linear'"):
        registry.create("linear", "mutation")
    described = registry.describe(registry.create("ties", "crossover", density=0.3))
    assert described == {
        "name": "ties",
        "params": {"method": "ties", "density": 0.3, "t": 0.5, "extract_rank": 64},
    }


@pytest.mark.parametrize("method", ["ties", "dare_ties", "slerp"])
def test_mergekit_methods_produce_a_loadable_adapter(method: str, store_with_parents):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    store, base = store_with_parents
    crossover = registry.create(method, "crossover", extract_rank=16)
    breeder = Breeder(store, base, crossover, None, rank_cap=8, dtype=torch.float32)
    child = breeder.breed(["p1", "p2"], seed=1, generation=1)

    folder = store.adapter_dir(child.id)
    assert folder is not None
    delta = read_adapter(folder)
    assert set(delta) == set(base.modules)
    assert child.rank <= 8
    # The merge moved the weights, and toward the parents rather than anywhere.
    p1, got = dense(store, "p1"), dense(store, child.id)
    module = base.modules[0]
    assert got[module].norm() > 0
    cosine = torch.nn.functional.cosine_similarity(got[module].flatten(), p1[module].flatten(), 0)
    assert cosine > 0.2
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(base.folder)), str(folder)
    )
    merged = model.merge_and_unload()
    layer = dict(merged.named_parameters())[module + ".weight"]
    torch.testing.assert_close(
        layer.detach(), base.weight(module) + got[module], atol=1e-5, rtol=1e-4
    )
