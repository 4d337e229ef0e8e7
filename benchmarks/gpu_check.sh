#!/usr/bin/env bash
# Everything edgemtl checks and times on an NVIDIA GPU, in one command, in under 8 minutes, into one file.
#
#     bash benchmarks/gpu_check.sh [-o DIR] [--ort-wheel onnxruntime_gpu-….whl] [--dry-run]
#
# Writes DIR/gpu_results.md (default DIR: runs/gpu_check): the machine, then one row per step (passed,
# failed, timed out, skipped and why, not run) and each step's output (the benchmark tables), plus a log per
# step. Steps, most important first, each with a time limit; a step that would pass the 8-minute budget is
# not started, and says so:
#   models      random-weight nano and small exports (+ checkpoints), and a detection export when edgemtl
#               has the detection kind (benchmarks/gpu_models.py)
#   cuda        a CUDA session starts (onnxruntime.preload_dlls() finds PyTorch's CUDA libraries: the
#               Engine calls it, providers.py)
#   tests       tests/runtime/test_gpu.py (skips count as failures here: on a GPU they must run)
#   engine      edgemtl bench on CUDA: engine alone at batch 1 and 8, end to end, pipeline; PyTorch eager
#   graphs      the same with CUDA graphs
#   frame-size  benchmarks/frame_size.py --device cuda (frame-sized file vs host resize)
#   multicam    benchmarks/multicam.py --device cuda (four cameras batched vs one pipeline each)
#   detection   the detection export: CUDA vs CPU outputs, then edgemtl bench on CUDA
#   tensorrt    edgemtl bench --device tensorrt, where TensorRT's libraries are installed
#
# onnxruntime-gpu: when the installed onnxruntime has no CUDA provider, it is replaced (--no-deps: the CPU
# package brought the dependencies) by the wheel given by --ort-wheel, else one found in .whl/ or /opt/wheels/,
# else whatever pip's own find-links offer without an index (the GPU machine may have no network).
# PYTHON=... chooses the interpreter (default python3): the one with PyTorch's CUDA libraries.
# --dry-run (tested on the CPU, tests/runtime/test_gpu_check.py): checks that every step's script exists and compiles
# and declares the flags the step passes, that the tests collect, and writes the file with every step
# "not run (dry run)"; exits 1 when a step's script is missing or does not parse.
set -uo pipefail
cd "$(dirname "$0")/.."

out=runs/gpu_check dry_run=0 wheel=""
while [ $# -gt 0 ]; do
    case "$1" in
        -o|--output) out=$2; shift 2 ;;
        --ort-wheel) wheel=$2; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        *) echo "usage: $0 [-o DIR] [--ort-wheel WHEEL] [--dry-run]" >&2; exit 2 ;;
    esac
done
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
BUDGET=470  # seconds for the steps; the rest of 8 minutes is set-up and writing
mkdir -p "$out/logs" && out=$(cd "$out" && pwd)
models=$out/models
results=$out/gpu_results.md
rows=() sections=() broken=0
start=$SECONDS

# One step: NAME LIMIT KIND ARGS...; KIND is `script` (python FILE ARGS), `cli` (edgemtl ARGS) or `pytest`.
step() {
    local name=$1 limit=$2 kind=$3; shift 3
    local shown log=$out/logs/$name.log
    case "$kind" in
        script) shown="python $*"; local command=("$PY" "$@") ;;
        cli) shown="edgemtl $*"; local command=("$PY" -c "from edgemtl.cli import main; main()" "$@") ;;
        pytest) shown="python -m pytest $*"; local command=("$PY" -m pytest "$@") ;;
    esac
    shown=${shown//$out\//}
    if [ "$dry_run" = 1 ]; then
        local problem
        problem=$(dry_check "$kind" "$@") || { broken=1; rows+=("| $name | BROKEN: $problem | | \`$shown\` |"); return; }
        rows+=("| $name | not run (dry run) | | \`$shown\` |")
        return
    fi
    if [ -n "${SKIP_REASON:-}" ]; then
        rows+=("| $name | skipped: $SKIP_REASON | | \`$shown\` |")
        return
    fi
    local left=$((BUDGET - (SECONDS - start)))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 20 ]; then
        rows+=("| $name | not run: the 8-minute budget is spent | | \`$shown\` |")
        return
    fi
    local began=$SECONDS status
    timeout --kill-after=10 "$limit" "${command[@]}" >"$log" 2>&1
    local rc=$?
    case $rc in
        0) status=passed ;;
        124|137) status="timed out after ${limit} s" ;;
        *) status="failed (exit $rc)" ;;
    esac
    if [ "$kind" = pytest ] && [ $rc = 0 ] && grep -Eq '[0-9]+ skipped' "$log"; then
        status="failed: tests skipped ($(grep -Eo '[0-9]+ passed|[0-9]+ skipped' "$log" | paste -sd, -))"
    fi
    rows+=("| $name | $status | $((SECONDS - began)) | \`$shown\` |")
    sections+=("## $name: $status" "" "\`$shown\`" "" "$(tail -n 60 "$log")" "")
    LAST_RC=$rc
}

# Dry run: the script exists and compiles, and declares every --flag the step passes; the tests collect;
# the CLI command's --help lists the flags.
dry_check() {
    local kind=$1; shift
    case "$kind" in
        script)
            local file=$1; shift
            [ -f "$file" ] || { echo "$file is missing"; return 1; }
            "$PY" -m py_compile "$file" 2>/dev/null || { echo "$file does not compile"; return 1; }
            local arg
            for arg in "$@"; do
                case "$arg" in
                    --*) grep -q -- "\"$arg\"" "$file" || { echo "$file declares no $arg"; return 1; } ;;
                esac
            done ;;
        pytest)
            "$PY" -m pytest --collect-only -q "$@" >/dev/null 2>&1 || { echo "pytest does not collect $*"; return 1; } ;;
        cli)
            local help arg
            help=$("$PY" -c "from edgemtl.cli import main; main()" "$1" --help 2>&1) \
                || { echo "edgemtl $1 --help failed"; return 1; }
            for arg in "$@"; do
                case "$arg" in
                    --*) grep -q -- "$arg" <<<"$help" || { echo "edgemtl $1 has no $arg"; return 1; } ;;
                esac
            done ;;
    esac
}

machine_lines() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 2 | paste -sd';' -)"
    "$PY" - <<'EOF' 2>&1
import importlib, platform
print(f"- python {platform.python_version()} on {platform.machine()}, {__import__('os').cpu_count()} CPUs")
for name in ("onnxruntime", "torch", "numpy", "cv2", "onnx", "tensorrt"):
    try:
        module = importlib.import_module(name)
        extra = f", providers {module.get_available_providers()}" if name == "onnxruntime" else ""
        extra += f", CUDA {module.version.cuda}, GPU available {module.cuda.is_available()}" if name == "torch" else ""
        print(f"- {name} {getattr(module, '__version__', '?')}{extra}")
    except Exception as exc:
        print(f"- {name}: not importable ({type(exc).__name__}: {exc})")
EOF
}

# onnxruntime-gpu in place of a CPU-only onnxruntime, from a wheel (the GPU machine has no network).
ensure_ort_gpu() {
    "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" \
        2>/dev/null && return 0
    [ -z "$wheel" ] && wheel=$(ls .whl/onnxruntime_gpu-*.whl /opt/wheels/onnxruntime_gpu-*.whl 2>/dev/null | tail -n 1)
    local source=${wheel:-onnxruntime-gpu} found=$out/ort-gpu-wheel
    # found first, offline; only then is the CPU package removed (both install the same onnxruntime module)
    if ! "$PY" -m pip download -q --no-index --no-deps -d "$found" "$source" >"$out/logs/ort-gpu.log" 2>&1; then
        echo "onnxruntime has no CUDA provider and no onnxruntime-gpu wheel was found (--ort-wheel WHEEL)"
        return 1
    fi
    { "$PY" -m pip uninstall -y -q onnxruntime && "$PY" -m pip install -q --no-deps "$found"/onnxruntime_gpu-*.whl; } \
        >>"$out/logs/ort-gpu.log" 2>&1 || { echo "installing onnxruntime-gpu failed (logs/ort-gpu.log)"; return 1; }
}

# TensorRT's libraries from its pip packages (tensorrt-cu13: tensorrt_libs/), for ORT's TensorRT provider.
find_tensorrt() {
    local libs
    libs=$("$PY" -c "import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))" 2>/dev/null) \
        && export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    [ -n "${libs:-}" ] || ldconfig -p 2>/dev/null | grep -q 'libnvinfer.so.10'
}

ort_problem=""
[ "$dry_run" = 0 ] && ort_problem=$(ensure_ort_gpu)
step models 90 script benchmarks/gpu_models.py export "$models"
if [ "$dry_run" = 0 ]; then
    [ -n "$ort_problem" ] && SKIP_REASON=$ort_problem
    [ "${LAST_RC:-1}" != 0 ] && SKIP_REASON=${SKIP_REASON:-"the models step failed"}
fi
step cuda 30 script benchmarks/gpu_models.py parity "$models/nano.onnx" --device cuda
[ "$dry_run" = 0 ] && [ "${LAST_RC:-1}" != 0 ] && SKIP_REASON=${SKIP_REASON:-"no CUDA session (see the cuda step)"}
step tests 150 pytest -q -rs tests/runtime/test_gpu.py
step engine 75 cli bench -m "$models/nano.onnx" -m "$models/small.onnx" --checkpoint "$models/nano.pt" \
    --device cuda --batch 1 --batch 8 --runs 200 --pipeline-frames 300
step graphs 45 cli bench -m "$models/nano.onnx" -m "$models/small.onnx" --device cuda --cuda-graph \
    --batch 1 --batch 8 --runs 200 --pipeline-frames 300
step frame-size 60 script benchmarks/frame_size.py --device cuda --presets nano small --runs 100 --skip-quality
step multicam 75 script benchmarks/multicam.py --device cuda --frames 150 --repeats 2
if [ "$dry_run" = 1 ] || [ -f "$models/detection.onnx" ]; then
    step detection 30 script benchmarks/gpu_models.py parity "$models/detection.onnx" --device cuda
    step detection-bench 40 cli bench -m "$models/detection.onnx" --device cuda --batch 1 --batch 8 --runs 200 \
        --pipeline-frames 300
else
    rows+=("| detection | $(cat "$models/detection.txt" 2>/dev/null || echo 'no detection model yet') | | |")
fi
if [ "$dry_run" = 1 ] || find_tensorrt; then
    step tensorrt 90 cli bench -m "$models/nano.onnx" --device tensorrt --trt-cache "$out/trt-cache" --batch 1 \
        --batch 8 --runs 200 --pipeline-frames 0
else
    rows+=("| tensorrt | skipped: TensorRT is not installed (no tensorrt_libs package, no libnvinfer.so.10) | | |")
fi

{
    echo "# edgemtl GPU check$([ "$dry_run" = 1 ] && echo ' (dry run: nothing was run)')"
    echo
    [ "$dry_run" = 0 ] && machine_lines && echo
    echo "Total: $((SECONDS - start)) s (budget: 8 minutes)."
    echo
    echo "| step | status | seconds | command |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    [ ${#sections[@]} -gt 0 ] && printf '%s\n' "${sections[@]}"
} >"$results"
echo "results: $results"
grep -E "^\| " "$results" | tail -n +2
[ "$broken" = 0 ] || exit 1
[ -z "${SKIP_REASON:-}" ] || exit 1  # a GPU check that could not run is not a pass
grep -Eq '^\| [a-z-]+ \| (failed|timed out|BROKEN)' "$results" && exit 1
exit 0
