"""bench/run_bench.py's judgements: when a fraction of the sgemm peak is printed, and which
OpenBLAS kernel sets the PyTorch peer is given."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("run_bench", REPO / "bench" / "run_bench.py")
run_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_bench)


def test_fraction_of_openblas_peak():
    peak = {"best": 100.0, "spread": 0.03, "own": 0.0}
    assert run_bench.fraction(75.0, peak) == "75.0%"
    assert run_bench.fraction(120.0, peak) == "noisy"  # OpenBLAS ran the layers: beating it is noise
    assert run_bench.fraction(75.0, {**peak, "spread": 0.2}) == "noisy"


def test_fraction_when_attnlabs_kernel_ran_the_layers():
    peak = {"best": 100.0, "spread": 0.03, "own": 170.0}
    assert run_bench.fraction(120.0, peak) == "120.0%"  # faster than OpenBLAS, not noise
    assert run_bench.fraction(171.0, peak) == "noisy"   # faster than its own kernel: noise


def test_session_peaks_keep_the_kernels_best():
    rows = [{"threads": 1, "attnlab_peaks": [100.0, 98.0], "attnlab_own_gemm": 160.0},
            {"threads": 1, "attnlab_peaks": [101.0], "attnlab_own_gemm": 170.0}]
    p = run_bench.session_peaks(rows)[1]
    assert p["best"] == 101.0 and p["own"] == 170.0 and p["rounds"] == 3


def test_peer_gets_openblas_avx512_kernels_where_pinned_to_others(monkeypatch):
    avx512 = " avx512f " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    envs = run_bench.peer_environments()
    assert envs[0] is None
    if avx512:
        assert len(envs) == 2 and envs[1]["OPENBLAS_CORETYPE"] == "SkylakeX"
        assert run_bench.tagged({}, envs[1])["openblas_coretype"] == "SkylakeX"
    else:
        assert len(envs) == 1
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert run_bench.peer_environments() == [None]  # OpenBLAS picks its best set itself
