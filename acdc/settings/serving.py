"""Settings of the population and of the vLLM servers that serve it."""

from dataclasses import dataclass, field
from typing import Literal

from acdc.settings.rules import (
    ConfigError,
    described,
    require_non_negative,
    require_port,
    require_positive,
)

VllmDevice = Literal["auto", "cpu", "gpu"]


@dataclass(kw_only=True)
class ServingSettings:
    """Population and serving: the seeds, the archive, the vLLM server and its threads."""

    base_model: str = field(
        default="",
        metadata=described(
            "Base model: an HF-format folder or a .gguf file. Empty means the bundled "
            "SmolLM2-135M-Instruct."
        ),
    )
    seed_adapters: list[str] = field(
        default_factory=list,
        metadata=described("LoRA adapter folders over the base model, used as seed experts."),
    )
    seed_finetunes: list[str] = field(
        default_factory=list,
        metadata=described("Full fine-tunes of the base model; extracted to LoRA seed experts."),
    )
    initial_population: int = field(
        default=8, metadata=described("Experts bred from the seeds before the first generation.")
    )
    archive_size: int = field(default=8, metadata=described("Experts the archive keeps."))
    selection: Literal["dns", "top_fitness"] = field(
        default="dns",
        metadata=described("Archive survival: dns (Dominated Novelty Search) or top_fitness."),
    )
    dns_k: int = field(default=3, metadata=described("DNS: fitter neighbours averaged per expert."))
    server_url: str = field(
        default="",
        metadata=described("Attach to a running vLLM server at this URL instead of starting one."),
    )
    server_urls: list[str] = field(
        default_factory=list,
        metadata=described(
            "Attach to several running vLLM servers (one per node or GPU) instead of starting "
            "one: requests go to the one with the fewest in flight, adapters load where needed."
        ),
    )
    vllm_device: VllmDevice = field(
        default="auto",
        metadata=described("vLLM build to start: auto (by what is installed), cpu, gpu."),
    )
    vllm_host: str = field(
        default="127.0.0.1", metadata=described("Host the started server binds.")
    )
    vllm_port: int = field(default=8011, metadata=described("Port the started server listens on."))
    served_model_name: str = field(
        default="base", metadata=described("Model id of the base model on the server.")
    )
    max_loras: int = field(
        default=8, metadata=described("Adapters served in one batch (vLLM --max-loras).")
    )
    max_loaded_adapters: int = field(
        default=16,
        metadata=described("Adapters kept registered on the server; least recently used go first."),
    )
    max_num_seqs: int = field(default=256, metadata=described("Sequences per batch (vLLM)."))
    max_model_len: int = field(
        default=4096,
        metadata=described("Context length (vLLM): prompt plus reply; the scientist needs 4096."),
    )
    kv_cache_gib: int = field(default=2, metadata=described("KV cache GiB on CPU (vLLM)."))
    cpu_reserved_cores: int = field(
        default=0,
        metadata=described(
            "CPU cores vLLM's CPU build keeps out of the model's threads for its scheduler "
            "(its own default: 1 per engine). 0: the model computes on every core; on 2 cores "
            "that measured 240 against 165 tokens/s at 64 requests."
        ),
    )
    cpu_threads_bind: str = field(
        default="",
        metadata=described(
            "Cores the CPU build pins the model's OpenMP threads to (VLLM_CPU_OMP_THREADS_BIND): "
            "'' keeps vLLM's default (auto: the first cores) or the environment's value; "
            "'nobind' lets the OS place them; or a list such as '0-1'. Beside one busy "
            "neighbour the default kept 0.9-1.1x of its quiet tokens/s, nobind 0.27x "
            "(2-core Xeon): keep the default."
        ),
    )
    vllm_preload: Literal["none", "auto", "tcmalloc", "iomp", "both"] = field(
        default="none",
        metadata=described(
            "Libraries a CPU server start preloads (LD_PRELOAD): tcmalloc (Debian "
            "libtcmalloc-minimal4), iomp (Intel OpenMP, pip intel-openmp), both, auto "
            "(whichever is present) or none. Measured on a 2-core Xeon: neither beat the "
            "run-to-run noise (base 250-410 tok/s with none), so none is the default. "
            "Logged at each start."
        ),
    )
    torch_threads: int = field(
        default=0,
        metadata=described(
            "Threads of torch work in the acdc process (breeding SVDs, fine-tuning, "
            "embeddings): 0 = automatic, one thread when the vLLM server computes on this "
            "CPU (a breeding step beside one busy neighbour: 1.9 s against 6 s with two "
            "threads, 2-core Xeon), torch's default otherwise; N sets N."
        ),
    )
    gpu_memory_utilization: float = field(
        default=0.85, metadata=described("Share of GPU memory vLLM may use (GPU build).")
    )
    tensor_parallel_size: int = field(
        default=1,
        metadata=described(
            "GPUs one engine of the started server spans (vLLM --tensor-parallel-size)."
        ),
    )
    data_parallel_size: int = field(
        default=1,
        metadata=described(
            "Engines of the started server behind its one endpoint, each a full copy of the "
            "model (vLLM --data-parallel-size); a runtime adapter load reaches all of them."
        ),
    )
    data_parallel_size_local: int = field(
        default=0,
        metadata=described(
            "Of those engines, how many run on this node (0 = all); the rest run on the "
            "other nodes of a Ray cluster (data_parallel_backend: ray)."
        ),
    )
    data_parallel_backend: Literal["mp", "ray"] = field(
        default="mp",
        metadata=described(
            "How the engines start: mp (processes on this node) or ray (a Ray cluster)."
        ),
    )
    dtype: str = field(
        default="auto",
        metadata=described(
            "Weights dtype of the server. auto: float32 on CPU (the CPU build's bfloat16 "
            "matmuls fall back to a slow path: 18 vs 118 tokens/s measured), bfloat16 on GPU."
        ),
    )
    server_start_timeout: float = field(
        default=600.0, metadata=described("Seconds to wait for the server to become healthy.")
    )
    request_timeout: float = field(
        default=300.0,
        metadata=described("Seconds before one request to the server times out."),
    )
    request_retries: int = field(
        default=3,
        metadata=described("Retries of a failed request (connection errors, 5xx)."),
    )
    lora_kernel: Literal["grouped", "vllm"] = field(
        default="grouped",
        metadata=described(
            "LoRA kernel of the CPU build: grouped (acdc's, one matmul per adapter in the "
            "batch) or vllm (its own, which gathers a weight copy per token)."
        ),
    )
    lora_compile: bool = field(
        default=False,
        metadata=described(
            "Keep torch.compile with LoRA on the CPU build (vLLM turns it off; acdc's "
            "LoRA ops make it safe, greedy answers identical). Off: on a quiet 2-core "
            "Xeon it gained 5-8 % LoRA tokens/s (the LoRA products, not compilation, "
            "hold the population at about 66 % of the base alone) while every server "
            "start compiled again (warm start 90-122 s instead of 30-35 s). Needs "
            "lora_kernel grouped; ignored on GPU."
        ),
    )
    vllm_extra_args: list[str] = field(
        default_factory=list,
        metadata=described("Extra command-line flags for the vLLM server."),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        require_positive(
            self,
            "archive_size",
            "dns_k",
            "max_loras",
            "max_loaded_adapters",
            "max_num_seqs",
            "max_model_len",
            "kv_cache_gib",
            "tensor_parallel_size",
            "data_parallel_size",
            "server_start_timeout",
            "request_timeout",
        )
        require_non_negative(self, "initial_population", "cpu_reserved_cores", "request_retries")
        require_port(self, "vllm_port")
        if self.max_loaded_adapters < self.max_loras:
            raise ConfigError("max_loaded_adapters must be at least max_loras")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1] (a share of GPU memory), "
                f"got {self.gpu_memory_utilization}"
            )
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
