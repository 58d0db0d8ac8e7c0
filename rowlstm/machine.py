"""Which kind of machine made a run: the facts that decide its bytes.

The same params give the same bytes on one kind of machine, and other bytes on another:
oneDNN picks its kernels by the instruction sets it finds (AVX2, AVX-512, AMX, each
capped by ONEDNN_MAX_CPU_ISA), Eigen blocks its matmuls by the caches' sizes, TensorFlow
splits work by the number of cores, and each TensorFlow release may change any of them.
The train stage writes this record beside the model (reports/machine.json), and `make
verify` compares it with the machine it runs on: the same kind must give the same bytes;
another kind only numbers within a tolerance.
"""

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
KINDS = {"Data": "d", "Instruction": "i"}
# oneDNN's x86 instruction-set levels, lowest first, each with the CPU flags it needs
# (Linux's names in /proc/cpuinfo) on top of the levels below it.
ONEDNN_LEVELS = (
    ("avx2", {"avx2", "fma"}),
    ("avx512_core", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
    ("avx512_core_vnni", {"avx512_vnni"}),
    ("avx512_core_bf16", {"avx512_bf16"}),
    ("avx512_core_fp16", {"avx512_fp16"}),
    ("avx512_core_amx", {"amx_tile", "amx_int8", "amx_bf16"}),
    ("avx512_core_amx_fp16", {"amx_fp16"}),
)


def describe() -> dict[str, Any]:
    """The kind of this machine, as a JSON-ready record (two equal records: one kind)."""
    info = _cpuinfo()
    return {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "caches": _caches(),
        "isa": onednn_isa(set(info.get("flags", "").split()), _isa_cap()),
        "tensorflow": metadata.version("tensorflow"),
    }


def onednn_isa(flags: set[str], cap: str | None = None) -> str:
    """The highest oneDNN level these CPU flags allow, no higher than cap (a level's name,
    as ONEDNN_MAX_CPU_ISA takes it); the machine's architecture where none applies."""
    names = [name for name, _ in ONEDNN_LEVELS]
    found, needed = platform.machine(), set()
    for name, extra in ONEDNN_LEVELS:
        needed |= extra
        if not needed <= flags:
            break
        found = name
        if cap is not None and cap in names and names.index(name) >= names.index(cap):
            break
    return found


def _isa_cap() -> str | None:
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.lower() if cap else None


def _cpuinfo() -> dict[str, str]:
    """The first processor's "key: value" lines of /proc/cpuinfo ({} where there is none)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return {}
    first = text.split("\n\n")[0]
    pairs = (line.split(":", 1) for line in first.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _caches() -> str:
    """The first core's caches, as "L1d 32K, L1i 32K, L2 1024K" ("" where Linux does not
    say): one string, so that `dvc metrics diff` shows it (it leaves lists out)."""
    found = []
    for index in sorted(CACHES.glob("index*")):
        try:
            level, kind, size = (
                (index / name).read_text().strip() for name in ("level", "type", "size")
            )
        except OSError:
            continue
        found.append(f"L{level}{KINDS.get(kind, '')} {size}")
    return ", ".join(found)
