#!/usr/bin/env bash
# The runtime (no torch) on aarch64, emulated: an arm64 Debian 12 Python under qemu-user, the project's
# wheel installed into it by its own pip (so pyproject's markers pick onnxruntime, not onnxruntime-gpu), and
# OpenVINO where its aarch64 wheel installs. `edgemtl info` and `edgemtl predict` run there on files exported
# on x86, and .ci/arm64_parity.py compares everything with x86's results: labels and masks equal,
# probabilities within 1e-4. Not timed: it runs emulated.
#
#     bash .ci/arm64_check.sh setup                 # apt: qemu-user-static, mmdebstrap (root or sudo)
#     bash .ci/arm64_check.sh install DIR           # arm64 Python + the runtime into DIR (no x86 venv needed)
#     bash .ci/arm64_check.sh check DIR X86_PYTHON  # export on x86, run both sides, compare
#
# No binfmt_misc registration is needed (or done): every arm64 program is started through qemu-aarch64-static
# explicitly. The venv's `python` is a two-line shell script that does so, passing its own path as argv[0], so
# sys.executable, pip's subprocesses and the `edgemtl` console script all work as on an arm64 machine.
# The arm64 root is Debian's packages extracted (mmdebstrap --variant=extract), not a booted system: nothing
# in it runs as root, and the host's dpkg and apt state are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
# The Pi 5's core. ORT's cpuinfo reads /proc/cpuinfo: under qemu-user it sees the x86 host's and crashes on
# import (SIGSEGV), so the root gets an ARM one; qemu's -L prefix makes the arm64 programs read that file first.
export QEMU_CPU=cortex-a76
ARM_PACKAGES=python3,python3-pip,libgl1,libglib2.0-0,libsm6,libxext6  # opencv-python's Qt needs libGL and X

setup() {
    if ! command -v qemu-aarch64-static >/dev/null || ! command -v mmdebstrap >/dev/null; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            qemu-user-static mmdebstrap >/dev/null
    fi
}

install() {
    local dir=$1 root=$1/root
    $sudo rm -rf "$root" && mkdir -p "$dir"
    $sudo mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$ARM_PACKAGES" \
        bookworm "$root" http://deb.debian.org/debian
    local cpu="" n midr=0x00000000414fd0b1  # Cortex-A76 r4p1, one entry per host CPU (its sysfs says how many)
    for n in $(seq 0 $(($(nproc) - 1))); do
        cpu+="processor	: $n
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

"
        # OpenVINO's ARM plugin reads the core's id here (and says so on stderr when it cannot)
        $sudo mkdir -p "$root/sys/devices/system/cpu/cpu$n/regs/identification"
        echo "$midr" | $sudo tee "$root/sys/devices/system/cpu/cpu$n/regs/identification/midr_el1" >/dev/null
    done
    $sudo mkdir -p "$root/proc"
    printf '%s' "$cpu" | $sudo tee "$root/proc/cpuinfo" >/dev/null

    # The project's wheel, built natively from a copy (the x86 install may be writing egg-info in the tree).
    rm -rf "$dir/src" "$dir/dist" && mkdir -p "$dir/src"
    cp -r pyproject.toml README.md edgemtl "$dir/src/"
    python3 -m venv "$dir/host"
    "$dir/host/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$dir/dist" "$dir/src"

    # The arm64 venv: Debian's pip from the root (system site packages), no ensurepip run.
    qemu-aarch64-static -L "$root" "$root/usr/bin/python3" -m venv --system-site-packages --without-pip "$dir/venv"
    rm "$dir/venv/bin/python3"
    printf '#!/bin/sh\nexec env QEMU_CPU=%s qemu-aarch64-static -0 "$0" -L %s %s/usr/bin/python3.11 "$@"\n' \
        "$QEMU_CPU" "$root" "$root" >"$dir/venv/bin/python3"
    chmod +x "$dir/venv/bin/python3"
    local py=$dir/venv/bin/python
    "$py" -m pip install --quiet --disable-pip-version-check "$dir"/dist/edgemtl-*.whl
    "$py" -c "import platform, sys, numpy, cv2, onnxruntime as ort; print('arm64 side:', platform.machine(), \
'| python', sys.version.split()[0], '| numpy', numpy.__version__, '| opencv', cv2.__version__, \
'| onnxruntime', ort.__version__, ort.get_available_providers())"
    if "$py" -c "import torch" 2>/dev/null; then echo "torch is installed on the arm64 side: the runtime must not need it"; exit 1; fi
    # OpenVINO's aarch64 wheel, where one installs for this Python: checked when it does, said when not.
    if "$py" -m pip install --quiet --disable-pip-version-check openvino >"$dir/openvino.log" 2>&1 \
        && "$py" -c "import openvino as ov; print('arm64 side: openvino', ov.__version__, ov.Core().available_devices)"; then
        touch "$dir/openvino-installed"
    else
        echo "arm64 side: openvino did not install or import here (see $dir/openvino.log); checked without it"
    fi
}

# One side's results: `edgemtl info` and `edgemtl predict` per file, then the raw outputs.
run_side() {
    local bin=$1 out=$2 files=$3; shift 3
    mkdir -p "$out"
    for model in model frame-sized; do
        "$bin/edgemtl" info "$files/$model.onnx" >"$out/info-$model.txt"
        "$bin/edgemtl" predict "$files/scene.png" -m "$files/$model.onnx" -o "$out/predict-$model" --device cpu >/dev/null
    done
    "$bin/python" .ci/arm64_parity.py dump "$files" "$out" "$@" >/dev/null
}

check() {
    local dir=$1 x86=$2
    rm -rf "$dir/files" "$dir/x86" "$dir/arm64" "$dir/home" "$dir/arm64-cache"
    # OpenVINO's telemetry (sent by a forked process from its ONNX reader) declined in a home of our own:
    # no network calls from the check, and no change to the machine's own home
    mkdir -p "$dir/home/intel" && echo 0 >"$dir/home/intel/openvino_telemetry"
    export HOME=$dir/home
    "$x86" .ci/arm64_parity.py make "$dir/files"
    local x86_openvino=()  # x86's Engine verdicts on OpenVINO, which arm64's must match
    "$x86" -c "import openvino" 2>/dev/null && x86_openvino=(--openvino)
    run_side "$(dirname "$x86")" "$dir/x86" "$dir/files" "${x86_openvino[@]}"
    local openvino=()
    [ -e "$dir/openvino-installed" ] && openvino=(--openvino)
    # a fresh verdict cache: the Engine must check OpenVINO against ORT here, not reuse x86's verdict
    (unset PYTHONPATH; export EDGEMTL_CACHE_DIR=$dir/arm64-cache; run_side "$dir/venv/bin" "$dir/arm64" "$dir/files" "${openvino[@]}")
    "$x86" .ci/arm64_parity.py compare "$dir/x86" "$dir/arm64"
}

case "${1:-}" in
    setup) setup ;;
    install) install "$2" ;;
    check) check "$2" "$3" ;;
    *) echo "usage: $0 setup | install DIR | check DIR X86_PYTHON" >&2; exit 2 ;;
esac
