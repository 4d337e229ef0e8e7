"""What a figure was measured on: one description of this machine for every report and benchmark.

Speed figures from a shared machine are only comparable with the load they were taken under, so the
description carries the load average, the CPU's name and its int8 support (VNNI), and the GPUs. Standard
library only; the versions of onnxruntime and OpenCV are read when those are installed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo() -> str:
    try:
        return _CPUINFO.read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform module knows."""
    names = [line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def cpu_has_vnni() -> bool:
    """VNNI (AVX-512 VNNI or AVX-VNNI) makes u8×s8 dot products exact at full range; without it the
    AVX2 kernels can saturate, so int8 weights are quantized to 7 bits (reduce_range) instead."""
    flags = _cpuinfo()
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


def gpu_names() -> str:
    """The NVIDIA GPUs and driver, as nvidia-smi names them ("" without one): the CUDA rows' hardware."""
    if shutil.which("nvidia-smi") is None:
        return ""
    query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    try:
        lines = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return ""
    gpus = (line.split(",") for line in lines)
    return "; ".join(f"{name.strip()} (driver {driver.strip()})" for name, driver in gpus)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ("n/a" where the OS has none): the noise behind a timing."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def library_versions() -> str:
    """The versions of the libraries that set the speed: onnxruntime and OpenCV when installed, and
    PyTorch only when it is loaded already (importing it costs seconds, and the runtime never needs it)."""
    versions = []
    for module, name in (("onnxruntime", "onnxruntime"), ("cv2", "OpenCV")):
        try:
            versions.append(f"{name} {__import__(module).__version__}")
        except ImportError:
            continue
    if "torch" in sys.modules:
        versions.append(f"torch {sys.modules['torch'].__version__}")
    return ", ".join(versions)


def describe_machine() -> str:
    """One line: architecture, CPU, cores, VNNI, GPUs, load and library versions."""
    gpus = gpu_names()
    return (
        f"{platform.machine()} {cpu_name()}, {os.cpu_count()} CPUs, VNNI {'yes' if cpu_has_vnni() else 'no'}"
        f"{f', GPU {gpus}' if gpus else ''}, load average (1/5/15 min) {load_average()}; {library_versions()}"
    )
