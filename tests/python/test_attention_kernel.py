"""Golden test of the attention kernel alone: `attnlab golden` writes, for every map, causal
and bidirectional, with and without ALiBi, the kernel's inputs (qkv, dL/dout) and results
(out, weights, dL/dqkv) to attention.safetensors; the float64 reference recomputes them.
Also checks the reference's own bidirectional mode without the engine."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

from attnlab_ref import ATTENTION_MAPS, read_safetensors
from attnlab_ref.model import ATTENTION_MAP_DEFS, alibi_bias, attention, elementwise, register_attention_map

REPO = Path(__file__).resolve().parents[2]

MODES = ("causal", "bidirectional")
BIAS = ("plain", "alibi")
# max|engine - ref| <= RTOL * max|ref| + ATOL per tensor: float32 sums over <= 21 keys and
# 8 head dimensions against float64 (observed ~1e-6 relative; a wrong mask, bias or
# derivative moves results by >= 1e-2).
OUT_RTOL, GRAD_RTOL, ATOL = 1e-4, 5e-4, 1e-7


def reference(qkv, dout, H, name, causal, alibi):
    """(out, weights, dqkv) of the float64 reference for qkv (B, T, 3C) and dL/dout (B, T, C)."""
    qkv = torch.tensor(qkv, dtype=torch.float64, requires_grad=True)
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, v = (z.reshape(B, T, H, C // H).transpose(1, 2) for z in qkv.split(C, dim=2))
    o, w = attention(q, k, v, name, causal=causal, alibi=alibi)
    out = o.transpose(1, 2).reshape(B, T, C)
    (out * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    return out.detach(), w.detach(), qkv.grad


@pytest.fixture(scope="module")
def kernel_cases(golden_dir):
    tensors, meta = read_safetensors(golden_dir / "attention.safetensors")
    assert meta.get("kind") == "golden-attention"
    return tensors, int(meta["heads"])


def test_every_map_and_mode_is_covered(kernel_cases):
    tensors, _ = kernel_cases
    found = {tuple(n.split(".")[:3]) for n in tensors}
    want = {(m, mode, b) for m in ATTENTION_MAPS for mode in MODES for b in BIAS}
    assert found == want, (f"missing in the engine's file: {sorted(want - found)}; "
                           f"unknown to the reference: {sorted(found - want)}")


def check_case(tensors, H, name, mode, bias):
    p = f"{name}.{mode}.{bias}."
    if p + "qkv" not in tensors:
        pytest.fail(f"the engine's file has no case {p[:-1]}")
    out, w, dqkv = reference(tensors[p + "qkv"], tensors[p + "dout"], H, name,
                             mode == "causal", bias == "alibi")
    for label, ref, rtol in (("out", out, OUT_RTOL), ("weights", w, OUT_RTOL), ("dqkv", dqkv, GRAD_RTOL)):
        got = torch.as_tensor(tensors[p + label], dtype=torch.float64)
        err = float((got - ref).abs().max())
        tol = rtol * float(ref.abs().max()) + ATOL
        assert err <= tol, f"{p}{label}: max|engine - ref| = {err:.3e} > {tol:.3e}"


@pytest.mark.parametrize("bias", BIAS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ATTENTION_MAPS)
def test_attention_kernel(kernel_cases, name, mode, bias):
    check_case(*kernel_cases, name, mode, bias)


def test_map_registered_in_tests(tmp_path):
    """w = exp(-s^2): registered in the C++ test (tests/test_attention_map.cpp), which writes
    its kernel cases, and here as one dict entry; the two must agree in every mode."""
    binary = Path(os.environ.get("ATTNLAB_BIN", REPO / "build" / "attnlab")).parent / "attnlab_tests"
    if not binary.is_file():
        if os.environ.get("ATTNLAB_REQUIRE_GOLDEN", "") not in ("", "0"):
            pytest.fail(f"{binary} not found")
        pytest.skip(f"{binary} not found (build it)")
    out = tmp_path / "gauss.safetensors"
    proc = subprocess.run([str(binary), "--gtest_filter=AttentionMap.GoldenCasesForTheTestMap"],
                          env={**os.environ, "ATTNLAB_MAP_GOLDEN_OUT": str(out)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and out.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    tensors, meta = read_safetensors(out)
    register_attention_map("gauss", elementwise(lambda s, T: torch.exp(-s * s)))
    try:
        for mode in MODES:
            for bias in BIAS:
                check_case(tensors, int(meta["heads"]), "gauss", mode, bias)
    finally:
        del ATTENTION_MAP_DEFS["gauss"]


@pytest.mark.parametrize("name", ATTENTION_MAPS)
def test_reference_bidirectional_sees_later_keys(name):
    torch.manual_seed(0)
    B, H, T, hs = 1, 2, 5, 4
    q, k, v = (torch.randn(B, H, T, hs, dtype=torch.float64) for _ in range(3))
    _, w_causal = attention(q, k, v, name, causal=True)
    _, w_bidir = attention(q, k, v, name, causal=False)
    assert (w_causal.triu(1) == 0).all()
    assert (w_bidir.triu(1) != 0).any()          # later keys get weight
    assert torch.equal(w_bidir[..., -1, :], w_causal[..., -1, :])  # the last query sees all keys either way


def test_reference_bidirectional_alibi_is_symmetric():
    H, T = 4, 6
    b = alibi_bias(H, T, causal=False)
    assert torch.equal(b, b.transpose(-2, -1))
    assert torch.equal(b.tril(), alibi_bias(H, T, causal=True).tril())
    assert float(b[0, 0, 3]) == pytest.approx(-3 * 2.0 ** (-8.0 / H))


@pytest.mark.parametrize("doc", ["docs/models.md", "README.md"])
def test_docs_table_lists_every_map(doc):
    """Each built-in map has one row in the maps table of the docs, and no other map does."""
    rows = re.findall(r"^\| `([a-z0-9_-]+)` +\|", (REPO / doc).read_text(), re.M)
    assert sorted(rows) == sorted(ATTENTION_MAPS), f"{doc}: table rows {rows}"
