"""The record of which kind of machine made a run (rowlstm/machine.py): the oneDNN level a
CPU's flags allow, capped as ONEDNN_MAX_CPU_ISA caps it, and a record two runs compare."""

import json
import platform

import pytest

from rowlstm.machine import describe, onednn_isa

AVX2_EPYC = {"avx", "avx2", "fma", "sse4_2"}
AVX512_EPYC = AVX2_EPYC | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}
AMX_XEON = AVX512_EPYC | {"avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"}


@pytest.mark.parametrize(
    ("flags", "cap", "level"),
    [
        (AVX2_EPYC, None, "avx2"),
        (AVX512_EPYC, None, "avx512_core_vnni"),
        (AVX512_EPYC | {"avx512_bf16"}, None, "avx512_core_bf16"),
        (AMX_XEON, None, "avx512_core_amx"),
        (AMX_XEON - {"avx512_fp16"}, None, "avx512_core_bf16"),  # a level needs those below
        (AMX_XEON, "avx2", "avx2"),
        (AMX_XEON, "avx512_core", "avx512_core"),
        (AVX2_EPYC, "avx512_core_amx", "avx2"),  # a cap never raises the level
        (AMX_XEON, "default", "avx512_core_amx"),  # not a level: no cap
    ],
)
def test_the_level_is_the_highest_the_flags_allow_under_the_cap(
    flags: set[str], cap: str | None, level: str
) -> None:
    assert onednn_isa(flags, cap) == level


def test_without_avx2_the_architecture_names_the_kind() -> None:
    assert onednn_isa({"sse4_2"}) == platform.machine()


def test_the_record_is_json_and_follows_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    record = describe()
    assert set(record) == {"cpu", "cores", "caches", "isa", "tensorflow"}
    assert json.loads(json.dumps(record)) == record and record["cores"] >= 1
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    expected = "avx2" if record["isa"].startswith("avx") else record["isa"]
    assert describe()["isa"] == expected
