"""The one configuration object of acdc, with YAML, environment and CLI overrides.

Precedence, highest first: a value given explicitly (CLI option, YAML file, LangGraph
Studio), then the ``ACDC_<FIELD>`` environment variable, then the default. As in the
LangGraph templates, a field still equal to its default takes the environment value.
"""

import dataclasses
import logging
import math
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from acdc import safe_files, setting_bounds

ENV_PREFIX = "ACDC_"

VllmDevice = Literal["auto", "cpu", "gpu"]
SvdMethod = Literal["exact", "lowrank"]
VALID_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""Rank caps vLLM accepts for ``--max-lora-rank``."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field (and its file)."""

    def __init__(self, message: str, field: str = "") -> None:
        """``field``: the setting at fault, when known, so callers can name its source."""
        super().__init__(message)
        self.field = field or message.split(" ", 1)[0].rstrip(":,")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The ``field: value`` mapping of a YAML file; ConfigError (naming file, line) if not.

    Read with the caps of :mod:`acdc.safe_files` (size, alias expansion, nesting).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist", "config")
    try:
        loaded = safe_files.load_yaml(path, "config file")
    except safe_files.InputFileError as err:
        raise ConfigError(str(err), "config") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise ConfigError(
            f"{path}: must hold a mapping of field: value, got {type(loaded).__name__}", "config"
        )
    return loaded


def _desc(text: str) -> dict[str, str]:
    return {"description": text}


@dataclass(kw_only=True)
class Context:
    """Every setting of an acdc run, shown in LangGraph Studio and the CLI's ``--help``."""

    # Where things live.
    runs_dir: str = field(default="runs", metadata=_desc("Folder holding one folder per run."))
    run_id: str = field(default="default", metadata=_desc("Name of this run's folder."))
    cache_dir: str = field(
        default=".cache/acdc",
        metadata=_desc("Cache for prepared seed models (dequantized GGUF, extracted adapters)."),
    )
    # Seeds.
    base_model: str = field(
        default="",
        metadata=_desc(
            "Base model: an HF-format folder or a .gguf file. Empty means the bundled "
            "SmolLM2-135M-Instruct."
        ),
    )
    seed_adapters: list[str] = field(
        default_factory=list,
        metadata=_desc("LoRA adapter folders over the base model, used as seed experts."),
    )
    seed_finetunes: list[str] = field(
        default_factory=list,
        metadata=_desc("Full fine-tunes of the base model; extracted to LoRA seed experts."),
    )
    # Breeding.
    lora_rank: int = field(default=16, metadata=_desc("Rank cap of every expert adapter."))
    crossover: str = field(
        default="linear", metadata=_desc("Crossover operator: linear, ties, dare_ties, slerp.")
    )
    crossover_weight_std: float = field(
        default=0.1, metadata=_desc("Std of the linear crossover weights w_i ~ N(1, std^2).")
    )
    mutation: str = field(default="svd_noise", metadata=_desc("Mutation operator."))
    mutation_sigma: float = field(
        default=1.0,
        metadata=_desc(
            "Std of the Gaussian noise on singular values (bench/diversity.py: 1.0 with keep "
            "rank 16 covers 3x the questions 0.25 with 4 did, no child rejected; 4.0 breaks "
            "every child)."
        ),
    )
    mutation_keep_rank: int = field(
        default=16,
        metadata=_desc(
            "Top-k singular values perturbed per weight matrix. The child is recompressed "
            "to lora_rank, which truncates part of a mutation as wide as the cap "
            "(expert.json records the recompression error); measured on the bundled seed, "
            "16 at rank 16 still gave the most diverse children."
        ),
    )
    mutation_svd: SvdMethod = field(
        default="lowrank",
        metadata=_desc("exact: full SVD; lowrank: randomized top-k SVD (much faster)."),
    )
    specialize_steps: int = field(
        default=24,
        metadata=_desc("specialize mutation (and seed --from-data): fine-tune steps."),
    )
    specialize_learning_rate: float = field(
        default=5e-4, metadata=_desc("specialize: AdamW learning rate of the LoRA fine-tune.")
    )
    specialize_rank: int = field(
        default=8,
        metadata=_desc(
            "specialize: rank of the trained LoRA, added to the child's delta before the "
            "recompression to lora_rank (keep it at or below lora_rank)."
        ),
    )
    specialize_batch_size: int = field(
        default=4, metadata=_desc("specialize: examples per fine-tune step.")
    )
    specialize_samples: int = field(
        default=4,
        metadata=_desc("specialize: answers sampled per niche task instance, before grading."),
    )
    specialize_temperature: float = field(
        default=0.7, metadata=_desc("specialize: sampling temperature of those answers (> 0).")
    )
    specialize_max_examples: int = field(
        default=32, metadata=_desc("specialize: most graded answers one fine-tune trains on.")
    )
    specialize_min_examples: int = field(
        default=4,
        metadata=_desc(
            "specialize: fewest passing answers a niche needs; with fewer the child is "
            "mutated by svd_noise instead (logged)."
        ),
    )
    adapter_dtype: Literal["bfloat16", "float16", "float32"] = field(
        default="bfloat16", metadata=_desc("dtype of adapter weights on disk.")
    )
    random_seed: int = field(default=0, metadata=_desc("Seed of every random draw in the run."))
    # The loop (DESIGN.md section 4); the paper's values are in configs/paper.yaml.
    generations: int = field(default=10, metadata=_desc("Generations to run (the budget)."))
    token_budget: int = field(
        default=0,
        metadata=_desc("Stop after this many generated tokens, all roles together (0 = none)."),
    )
    cost_budget_usd: float = field(
        default=0.0,
        metadata=_desc(
            "Stop starting role calls when spent plus in-flight USD would pass this, let "
            "those in flight finish and end the run, resumable with a larger budget "
            "(0 = none; costs from the <role>_price fields)."
        ),
    )
    initial_population: int = field(
        default=8, metadata=_desc("Experts bred from the seeds before the first generation.")
    )
    children_per_generation: int = field(default=4, metadata=_desc("Children bred per generation."))
    archive_size: int = field(default=8, metadata=_desc("Experts the archive keeps."))
    selection: Literal["dns", "top_fitness"] = field(
        default="dns",
        metadata=_desc("Archive survival: dns (Dominated Novelty Search) or top_fitness."),
    )
    dns_k: int = field(default=3, metadata=_desc("DNS: fitter neighbours averaged per expert."))
    pass_threshold: float = field(
        default=0.5, metadata=_desc("Mean instance score at which an expert passes a task.")
    )
    sanity_check: bool = field(
        default=True,
        metadata=_desc("Reject children whose answers to fixed prompts are gibberish."),
    )
    seed_tasks_dir: str = field(
        default="",
        metadata=_desc("Folder of hand-written seed task files ('' = the bundled tasks/seed)."),
    )
    initial_pool: int = field(
        default=40, metadata=_desc("Active tasks to reach before the first generation.")
    )
    task_batch: int = field(default=8, metadata=_desc("Scientist proposals per micro-batch."))
    task_rounds: int = field(
        default=10, metadata=_desc("Most micro-batches per pool-growing phase (bounds the cost).")
    )
    validate_tasks: bool = field(
        default=True, metadata=_desc("The judge checks every new task before the curator sees it.")
    )
    review_tasks: bool = field(
        default=False,
        metadata=_desc("Pause for a person to approve, edit or reject admitted tasks."),
    )
    adapt_every: int = field(default=5, metadata=_desc("Adapt the task pool every k generations."))
    adapt_parents: int = field(
        default=16, metadata=_desc("Parent tasks drawn (with replacement) per adaptation.")
    )
    adapt_budget: int = field(
        default=48,
        metadata=_desc(
            "Most scientist proposals one adaptation makes: the drawn parents' first, then "
            "refill proposals until the active pool is back at its target (>= adapt_parents)."
        ),
    )
    harder_pass_rate: float = field(
        default=0.5, metadata=_desc("Archive pass rate above which a task is made harder.")
    )
    instances_per_task: int = field(
        default=0,
        metadata=_desc(
            "Instances of each task the experts answer (0 = all; the official code scores "
            "only the first, all 3-5 give steadier skill vectors)."
        ),
    )
    subject_max_tokens: int = field(
        default=512, metadata=_desc("Max new tokens of an expert's answer to a task instance.")
    )
    subject_concurrency: int = field(
        default=0,
        metadata=_desc(
            "Expert answers in flight at once (0 = the population servers' capacity: "
            "max_num_seqs per engine)."
        ),
    )
    evaluation_passes: int = field(
        default=3,
        metadata=_desc(
            "Passes over the missing evaluations per phase: a transient failure (timeout, "
            "429, 5xx) leaves its item missing for the next pass, never a score of 0."
        ),
    )
    checkpointer_url: str = field(
        default="",
        metadata=_desc("Postgres URL for LangGraph checkpoints ('' = SQLite in the run folder)."),
    )
    # Roles. A model is "" (the population server's base model), an init_chat_model
    # spec "provider:model", or a model name served at the role's OpenAI-compatible URL.
    scientist_model: str = field(
        default="",
        metadata=_desc("Model of the task-scientist: '' = local base, or provider:model."),
    )
    scientist_base_url: str = field(
        default="", metadata=_desc("OpenAI-compatible URL of the task-scientist model ('' = none).")
    )
    scientist_temperature: float = field(default=0.7, metadata=_desc("Sampling temperature."))
    scientist_max_tokens: int = field(default=2048, metadata=_desc("Max new tokens per call."))
    scientist_timeout: float = field(default=120.0, metadata=_desc("Seconds per call."))
    scientist_retries: int = field(
        default=2,
        metadata=_desc("Retries of a failed or malformed call, then the item is rejected."),
    )
    scientist_concurrency: int = field(
        default=0,
        metadata=_desc(
            "Calls in flight at once (0 = the population server's capacity, max_num_seqs "
            "per engine, when it serves this role, else 8)."
        ),
    )
    scientist_price: list[float] = field(
        default_factory=list,
        metadata=_desc(
            "USD per million input and output tokens of the scientist model ([] = free)."
        ),
    )
    judge_model: str = field(
        default="", metadata=_desc("Model of the judge: '' = local base, or provider:model.")
    )
    judge_base_url: str = field(
        default="", metadata=_desc("OpenAI-compatible URL of the judge model ('' = none).")
    )
    judge_temperature: float = field(default=0.0, metadata=_desc("Sampling temperature."))
    judge_max_tokens: int = field(default=768, metadata=_desc("Max new tokens per call."))
    judge_timeout: float = field(default=120.0, metadata=_desc("Seconds per call."))
    judge_retries: int = field(
        default=2,
        metadata=_desc("Retries of a failed or malformed call, then the item is rejected."),
    )
    judge_concurrency: int = field(
        default=0,
        metadata=_desc(
            "Calls in flight at once (0 = the population server's capacity, max_num_seqs "
            "per engine, when it serves this role, else 8)."
        ),
    )
    judge_price: list[float] = field(
        default_factory=list,
        metadata=_desc("USD per million input and output tokens of the judge model ([] = free)."),
    )
    judge_pairs_file: str = field(
        default="",
        metadata=_desc(
            "Labelled judge pairs (JSONL: instruction, reference, rubric, response, label) "
            "the judge is calibrated on at bootstrap ('' = bench/data/judge_pairs.jsonl)."
        ),
    )
    judge_calibration_size: int = field(
        default=0,
        metadata=_desc("Pairs graded in the calibration, half right, half wrong (0 = all)."),
    )
    judge_min_agreement: float = field(
        default=0.75,
        metadata=_desc(
            "Calibration agreement below which rubric tasks are not admitted and are left "
            "out of fitness, DNS and task forces."
        ),
    )
    trust_judge: bool = field(
        default=False,
        metadata=_desc("Use rubric tasks even when the judge's calibration is below the bar."),
    )
    curator_model: str = field(
        default="",
        metadata=_desc("Model of the curator's novelty check: '' = local base, or provider:model."),
    )
    curator_base_url: str = field(
        default="",
        metadata=_desc("OpenAI-compatible URL of the curator's novelty check model ('' = none)."),
    )
    curator_temperature: float = field(default=0.0, metadata=_desc("Sampling temperature."))
    curator_max_tokens: int = field(default=512, metadata=_desc("Max new tokens per call."))
    curator_timeout: float = field(default=120.0, metadata=_desc("Seconds per call."))
    curator_retries: int = field(
        default=2,
        metadata=_desc("Retries of a failed or malformed call, then the item is rejected."),
    )
    curator_concurrency: int = field(
        default=0,
        metadata=_desc(
            "Calls in flight at once (0 = the population server's capacity, max_num_seqs "
            "per engine, when it serves this role, else 8)."
        ),
    )
    curator_price: list[float] = field(
        default_factory=list,
        metadata=_desc("USD per million input and output tokens of the curator model ([] = free)."),
    )
    prompts_dir: str = field(
        default="",
        metadata=_desc("Folder of your own prompt files; a file there replaces the bundled one."),
    )
    reflection_rounds: int = field(
        default=1, metadata=_desc("Self-reflection rounds of the scientist per task.")
    )
    novelty_threshold: float = field(
        default=0.7,
        metadata=_desc(
            "Cosine similarity at or above which an accepted task is shown to the LLM's "
            "'interestingly new' check of a new task."
        ),
    )
    duplicate_threshold: float = field(
        default=0.95,
        metadata=_desc(
            "Cosine similarity above which a new task is refused as near-identical, "
            "without asking the LLM (a harder/easier variant's own lineage excepted)."
        ),
    )
    novelty_neighbours: int = field(
        default=3, metadata=_desc("Nearest tasks shown to the scientist and the novelty check.")
    )
    contamination_threshold: float = field(
        default=0.9, metadata=_desc("Similarity to a benchmark question that rejects a task.")
    )
    benchmark_files: list[str] = field(
        default_factory=list,
        metadata=_desc("JSONL benchmark questions for the contamination gate."),
    )
    novel_related_share: float = field(
        default=0.8,
        metadata=_desc(
            "Share of 'novel' adaptations asking for a task related to its parent (the "
            "reference's 80 %); the rest ask for an unrelated task."
        ),
    )
    pool_max: int = field(default=250, metadata=_desc("Most active tasks; oldest retire first."))
    chroma_host: str = field(
        default="", metadata=_desc("ChromaDB server host ('' = embedded store in the run folder).")
    )
    chroma_port: int = field(default=8000, metadata=_desc("ChromaDB server port."))
    embedding_base_url: str = field(
        default="", metadata=_desc("OpenAI-compatible embeddings URL ('' = bundled MiniLM).")
    )
    embedding_model: str = field(default="", metadata=_desc("Embedding model at that URL."))
    # Task forces.
    taskforce_size: int = field(
        default=3, metadata=_desc("Experts in a task force (N of best-of-N and coverage).")
    )
    taskforce_members: list[str] = field(
        default_factory=list,
        metadata=_desc("Explicit task force expert ids ('' = pick N from the run by coverage)."),
    )
    taskforce_required: list[str] = field(
        default_factory=list,
        metadata=_desc("Experts always in a picked task force, e.g. the instruct seed 'base'."),
    )
    complete_skills: bool = field(
        default=True,
        metadata=_desc(
            "Before a task force is picked, evaluate every candidate (and the seed) on "
            "every task ever active (missing triples only); false: mask the missing cells."
        ),
    )
    taskforce_router: bool = field(
        default=False,
        metadata=_desc(
            "Model 'taskforce' asks one member instead of best-of-N: the one passing the "
            "run's tasks nearest the question (ChromaDB task index)."
        ),
    )
    selector: Literal["judge", "majority", "tournament"] = field(
        default="judge",
        metadata=_desc(
            "Best-of-N selector: judge (picks one of N, shuffled), majority (vote on "
            "final answers), tournament (pairwise judge knockout)."
        ),
    )
    answer_max_tokens: int = field(
        default=256, metadata=_desc("Max new tokens of a task force member's answer.")
    )
    eval_max_tokens: int = field(
        default=0,
        metadata=_desc(
            "Max new tokens of a benchmark answer in acdc eval coverage (0 = "
            "subject_max_tokens, the limit the run's tasks were answered with)."
        ),
    )
    answer_temperature: float = field(
        default=0.0, metadata=_desc("Sampling temperature of task force members.")
    )
    seed_sample_temperature: float = field(
        default=0.7,
        metadata=_desc("Temperature of the baseline 'N samples of the seed' (must be > 0)."),
    )
    # Serving.
    server_url: str = field(
        default="",
        metadata=_desc("Attach to a running vLLM server at this URL instead of starting one."),
    )
    server_urls: list[str] = field(
        default_factory=list,
        metadata=_desc(
            "Attach to several running vLLM servers (one per node or GPU) instead of starting "
            "one: requests go to the one with the fewest in flight, adapters load where needed."
        ),
    )
    vllm_device: VllmDevice = field(
        default="auto",
        metadata=_desc("vLLM build to start: auto (by what is installed), cpu, gpu."),
    )
    vllm_host: str = field(default="127.0.0.1", metadata=_desc("Host the started server binds."))
    vllm_port: int = field(default=8011, metadata=_desc("Port the started server listens on."))
    served_model_name: str = field(
        default="base", metadata=_desc("Model id of the base model on the server.")
    )
    max_loras: int = field(
        default=8, metadata=_desc("Adapters served in one batch (vLLM --max-loras).")
    )
    max_loaded_adapters: int = field(
        default=16,
        metadata=_desc("Adapters kept registered on the server; least recently used go first."),
    )
    max_num_seqs: int = field(default=256, metadata=_desc("Sequences per batch (vLLM)."))
    max_model_len: int = field(
        default=4096,
        metadata=_desc("Context length (vLLM): prompt plus reply; the scientist needs 4096."),
    )
    kv_cache_gib: int = field(default=2, metadata=_desc("KV cache GiB on CPU (vLLM)."))
    cpu_reserved_cores: int = field(
        default=0,
        metadata=_desc(
            "CPU cores vLLM's CPU build keeps out of the model's threads for its scheduler "
            "(its own default: 1 per engine). 0: the model computes on every core; on 2 cores "
            "that measured 240 against 165 tokens/s at 64 requests."
        ),
    )
    cpu_threads_bind: str = field(
        default="",
        metadata=_desc(
            "Cores the CPU build pins the model's OpenMP threads to (VLLM_CPU_OMP_THREADS_BIND): "
            "'' keeps vLLM's default (auto: the first cores) or the environment's value; "
            "'nobind' lets the OS place them (shared machines); or a list such as '0-1'."
        ),
    )
    vllm_preload: Literal["none", "auto", "tcmalloc", "iomp", "both"] = field(
        default="none",
        metadata=_desc(
            "Libraries a CPU server start preloads (LD_PRELOAD): tcmalloc (Debian "
            "libtcmalloc-minimal4), iomp (Intel OpenMP, pip intel-openmp), both, auto "
            "(whichever is present) or none (not measured here yet). Logged at each start."
        ),
    )
    torch_threads: int = field(
        default=0,
        metadata=_desc(
            "Threads of torch work in the acdc process (breeding SVDs, fine-tuning, "
            "embeddings): 0 keeps torch's default (one per core), which contends with the "
            "vLLM server's threads on the same cores."
        ),
    )
    gpu_memory_utilization: float = field(
        default=0.85, metadata=_desc("Share of GPU memory vLLM may use (GPU build).")
    )
    tensor_parallel_size: int = field(
        default=1,
        metadata=_desc(
            "GPUs one engine of the started server spans (vLLM --tensor-parallel-size)."
        ),
    )
    data_parallel_size: int = field(
        default=1,
        metadata=_desc(
            "Engines of the started server behind its one endpoint, each a full copy of the "
            "model (vLLM --data-parallel-size); a runtime adapter load reaches all of them."
        ),
    )
    data_parallel_size_local: int = field(
        default=0,
        metadata=_desc(
            "Of those engines, how many run on this node (0 = all); the rest run on the "
            "other nodes of a Ray cluster (data_parallel_backend: ray)."
        ),
    )
    data_parallel_backend: Literal["mp", "ray"] = field(
        default="mp",
        metadata=_desc(
            "How the engines start: mp (processes on this node) or ray (a Ray cluster)."
        ),
    )
    dtype: str = field(
        default="auto",
        metadata=_desc(
            "Weights dtype of the server. auto: float32 on CPU (the CPU build's bfloat16 "
            "matmuls fall back to a slow path: 18 vs 118 tokens/s measured), bfloat16 on GPU."
        ),
    )
    server_start_timeout: float = field(
        default=600.0, metadata=_desc("Seconds to wait for the server to become healthy.")
    )
    request_timeout: float = field(
        default=300.0, metadata=_desc("Seconds before one request to the server times out.")
    )
    request_retries: int = field(
        default=3, metadata=_desc("Retries of a failed request (connection errors, 5xx).")
    )
    lora_kernel: Literal["grouped", "vllm"] = field(
        default="grouped",
        metadata=_desc(
            "LoRA kernel of the CPU build: grouped (acdc's, one matmul per adapter in the "
            "batch) or vllm (its own, which gathers a weight copy per token)."
        ),
    )
    vllm_extra_args: list[str] = field(
        default_factory=list, metadata=_desc("Extra command-line flags for the vLLM server.")
    )

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                raise TypeError(f"Context field {f.name} has no default")
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and getattr(self, f.name) == default:
                setattr(self, f.name, parse_value(f.name, hints[f.name], raw))
        for f in fields(self):
            setattr(self, f.name, _typed(f.name, hints[f.name], getattr(self, f.name)))
        self._check()

    def _check(self) -> None:
        positive = (
            "scientist_max_tokens",
            "judge_max_tokens",
            "curator_max_tokens",
            "novelty_neighbours",
            "pool_max",
            "lora_rank",
            "max_loras",
            "max_loaded_adapters",
            "max_num_seqs",
            "max_model_len",
            "kv_cache_gib",
            "mutation_keep_rank",
            "specialize_steps",
            "specialize_rank",
            "specialize_batch_size",
            "specialize_samples",
            "specialize_max_examples",
            "specialize_min_examples",
            "generations",
            "children_per_generation",
            "archive_size",
            "dns_k",
            "task_batch",
            "task_rounds",
            "adapt_every",
            "adapt_parents",
            "subject_max_tokens",
            "evaluation_passes",
            "tensor_parallel_size",
            "data_parallel_size",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lora_rank not in VALID_LORA_RANKS:
            raise ConfigError(f"lora_rank must be one of {VALID_LORA_RANKS}, got {self.lora_rank}")
        if self.max_loaded_adapters < self.max_loras:
            raise ConfigError("max_loaded_adapters must be at least max_loras")
        if self.mutation_sigma < 0 or self.crossover_weight_std < 0:
            raise ConfigError("mutation_sigma and crossover_weight_std must be >= 0")
        if self.specialize_learning_rate <= 0 or self.specialize_temperature <= 0:
            raise ConfigError(
                "specialize_learning_rate and specialize_temperature must be > 0, got "
                f"{self.specialize_learning_rate} and {self.specialize_temperature}"
            )
        if self.specialize_rank > self.lora_rank:
            raise ConfigError(
                f"specialize_rank must be at most lora_rank ({self.lora_rank}), "
                f"got {self.specialize_rank}"
            )
        if not 0 < self.vllm_port < 65536:
            raise ConfigError(f"vllm_port must be in 1..65535, got {self.vllm_port}")
        if self.request_retries < 0 or self.request_timeout <= 0 or self.server_start_timeout <= 0:
            raise ConfigError("request_retries must be >= 0 and timeouts positive")
        for role in ("scientist", "judge", "curator"):
            if getattr(self, f"{role}_retries") < 0 or getattr(self, f"{role}_timeout") <= 0:
                raise ConfigError(f"{role}_retries must be >= 0 and {role}_timeout positive")
        for name in (
            "initial_population",
            "initial_pool",
            "token_budget",
            "instances_per_task",
            "cpu_reserved_cores",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "novelty_threshold",
            "duplicate_threshold",
            "contamination_threshold",
            "novel_related_share",
            "pass_threshold",
            "harder_pass_rate",
            "judge_min_agreement",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.adapt_budget < self.adapt_parents:
            raise ConfigError(
                f"adapt_budget ({self.adapt_budget}) must be at least adapt_parents "
                f"({self.adapt_parents}): the drawn parents are part of the budget",
                "adapt_budget",
            )
        if self.reflection_rounds < 0:
            raise ConfigError("reflection_rounds must be >= 0")
        for role in ("subject", "scientist", "judge", "curator"):
            if getattr(self, f"{role}_concurrency") < 0:
                raise ConfigError(f"{role}_concurrency must be >= 0 (0 = automatic)")
        if self.cost_budget_usd < 0:
            raise ConfigError(f"cost_budget_usd must be >= 0, got {self.cost_budget_usd}")
        for role in ("scientist", "judge", "curator"):
            name = f"{role}_price"
            try:
                price = [float(v) for v in getattr(self, name)]
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{name}: prices must be numbers") from err
            if len(price) not in (0, 2) or any(v < 0 for v in price):
                shown = safe_files.preview(price)
                raise ConfigError(f"{name} must be [] or [input, output] USD >= 0, got {shown}")
            setattr(self, name, price)
        if not 0 <= self.data_parallel_size_local <= self.data_parallel_size:
            raise ConfigError(
                f"data_parallel_size_local must be in 0..data_parallel_size "
                f"({self.data_parallel_size}), got {self.data_parallel_size_local}"
            )
        if (
            self.data_parallel_size_local not in (0, self.data_parallel_size)
            and self.data_parallel_backend != "ray"
        ):
            raise ConfigError(
                "data_parallel_size_local: engines on other nodes need data_parallel_backend: ray"
            )
        if self.server_url and self.server_urls:
            raise ConfigError("server_urls: set server_url or server_urls, not both")
        if self.taskforce_size < 1:
            raise ConfigError(f"taskforce_size must be at least 1, got {self.taskforce_size}")
        if self.judge_calibration_size < 0:
            raise ConfigError(
                f"judge_calibration_size must be >= 0, got {self.judge_calibration_size}"
            )
        if self.eval_max_tokens < 0:
            raise ConfigError(f"eval_max_tokens must be >= 0, got {self.eval_max_tokens}")
        if self.answer_max_tokens < 1:
            raise ConfigError(f"answer_max_tokens must be positive, got {self.answer_max_tokens}")
        if len(set(self.taskforce_required)) != len(self.taskforce_required):
            shown = safe_files.preview(self.taskforce_required)
            raise ConfigError(f"taskforce_required repeats an expert: {shown}")
        if len(self.taskforce_required) > self.taskforce_size:
            raise ConfigError(
                f"taskforce_required names {len(self.taskforce_required)} experts, more than "
                f"taskforce_size {self.taskforce_size}"
            )
        if self.answer_temperature < 0:
            raise ConfigError(f"answer_temperature must be >= 0, got {self.answer_temperature}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_port") and isinstance(value, int) and not 0 < value < 65536:
                raise ConfigError(f"{f.name} must be in 1..65535, got {value}")
            if f.name.endswith("_temperature") and isinstance(value, float) and value < 0:
                raise ConfigError(f"{f.name} must be >= 0, got {value}")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1] (a share of GPU memory), "
                f"got {self.gpu_memory_utilization}"
            )
        if self.seed_sample_temperature <= 0:
            raise ConfigError(
                f"seed_sample_temperature must be > 0, got {self.seed_sample_temperature}"
            )
        hints = get_type_hints(type(self))
        for f in fields(self):
            allowed = _literal_values(hints[f.name])
            if allowed and getattr(self, f.name) not in allowed:
                shown = safe_files.preview(getattr(self, f.name))
                raise ConfigError(f"{f.name} must be one of {allowed}, got {shown}")

    @property
    def attached_urls(self) -> list[str]:
        """Population servers to attach to (``server_urls`` or ``server_url``); [] = start one."""
        urls = self.server_urls or ([self.server_url] if self.server_url else [])
        return [url.rstrip("/") for url in urls]

    @property
    def pool_target(self) -> int:
        """Active tasks the pool grows to, and is refilled to after each adaptation.

        ``initial_pool``, capped by ``pool_max``.
        """
        return min(self.initial_pool, self.pool_max)

    @property
    def run_dir(self) -> Path:
        """Folder of this run."""
        return Path(self.runs_dir) / self.run_id

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        base: dict[str, Any] | None = None,
        base_name: str = "",
        **overrides: Any,
    ) -> "Context":
        """Build a Context from ``base``, then a YAML file, then explicit overrides.

        ``None`` overrides are not given. A refusal names where the bad value came from:
        the file, ``base_name`` (e.g. a run's recorded config.yaml), the option or the
        environment variable, and the field.
        """
        values: dict[str, Any] = dict(base or {})
        origin = dict.fromkeys(values, base_name)
        if config_file is not None:
            loaded = read_config_file(config_file)
            values.update(loaded)
            origin.update(dict.fromkeys(loaded, str(config_file)))
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        origin.update({k: "option --" + k.replace("_", "-") for k in given})
        _translate_renamed(values, origin)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            where = sorted({origin[k] for k in unknown if origin[k]})
            prefix = f"{', '.join(where)}: " if where else ""
            raise ConfigError(f"{prefix}unknown setting(s): {', '.join(unknown)}", unknown[0])
        try:
            return cls(**values)
        except ConfigError as err:
            source = origin.get(err.field, "")
            if not source and os.environ.get(ENV_PREFIX + err.field.upper()) is not None:
                source = f"environment variable {ENV_PREFIX + err.field.upper()}"
            raise ConfigError(f"{source}: {err}" if source else str(err), err.field) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view, as recorded in a run folder."""
        return dataclasses.asdict(self)


def _translate_renamed(values: dict[str, Any], origin: dict[str, str]) -> None:
    """Read settings of older configs under their new names (documented in the README).

    ``novel_unrelated_share`` became ``novel_related_share`` (its complement): the old
    default sent 80 % of novel requests to the unrelated prompt, the reference sends 80 %
    to the related one. An old file or recorded run keeps its own behaviour, and a warning
    says how to write it now; naming both is refused.
    """
    if os.environ.get(ENV_PREFIX + "NOVEL_UNRELATED_SHARE") is not None:
        raise ConfigError(
            f"environment variable {ENV_PREFIX}NOVEL_UNRELATED_SHARE: renamed; set "
            f"{ENV_PREFIX}NOVEL_RELATED_SHARE to 1 minus its value instead",
            "novel_related_share",
        )
    if "novel_unrelated_share" not in values:
        return
    where = origin.pop("novel_unrelated_share", "") or "config"
    old = values.pop("novel_unrelated_share")
    if "novel_related_share" in values:
        raise ConfigError(
            f"{where}: novel_unrelated_share is the old name of 1 - novel_related_share; "
            "give novel_related_share alone",
            "novel_related_share",
        )
    if isinstance(old, bool) or not isinstance(old, int | float) or not 0.0 <= old <= 1.0:
        raise ConfigError(
            f"{where}: novel_unrelated_share (now 1 - novel_related_share) must be a number "
            f"in [0, 1], got {safe_files.preview(old)}",
            "novel_related_share",
        )
    values["novel_related_share"] = round(1.0 - float(old), 6)
    origin["novel_related_share"] = where
    logging.getLogger(__name__).warning(
        "%s: novel_unrelated_share %s is read as novel_related_share %s; write that instead",
        where,
        old,
        values["novel_related_share"],
    )


def _typed(name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field's type; raises ConfigError naming the field.

    Ints stay ints (2.5 generations is an error, not 2), floats must be finite, paths
    become strings, lists must be lists (a bare string is not a list of one).
    """
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        hint = next(a for a in get_args(hint) if a is not type(None))
        origin = get_origin(hint)
    wrong = f"{name} must be {{}}, got {safe_files.preview(value)} ({type(value).__name__})"
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(wrong.format("true or false"), name)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(wrong.format("an integer"), name)
    if hint is int and (beyond := setting_bounds.out_of_bounds(name, value)):
        raise ConfigError(beyond, name)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(wrong.format("a number"), name)
        if not math.isfinite(value):
            raise ConfigError(wrong.format("a finite number"), name)
        return float(value)
    if hint is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(wrong.format("a string"), name)
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(
                wrong.format("a list (in YAML: [a, b] or one '- item' per line)"), name
            )
        if get_args(hint) == (str,):
            value = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(wrong.format("a list of strings"), name)
    return value


def _literal_values(hint: Any) -> tuple[Any, ...]:
    return get_args(hint) if get_origin(hint) is Literal else ()


def parse_value(name: str, hint: Any, raw: str) -> Any:
    """Parse a string (environment variable or CLI option) as the field's type."""
    origin = get_origin(hint)
    try:
        if origin is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
        if origin in (types.UnionType, typing.Union):
            return parse_value(name, next(a for a in get_args(hint) if a is not type(None)), raw)
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes"}
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError as err:
        raise ConfigError(f"{name}: cannot parse {safe_files.preview(raw)} as {hint}") from err
    return raw
