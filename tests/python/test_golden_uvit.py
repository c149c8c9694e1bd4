"""Golden test of the U-ViT: the C++ engine (`attnlab golden-uvit --out DIR`) against the
float64 PyTorch reference (attnlab_ref.uvit), per case: predicted noise, MSE, every parameter
gradient, the losses of ten AdamW steps and the final parameters. Tolerances and their
reasons are those of test_golden.py (the same engine arithmetic, one more model); the final
parameters use its float32-twin trajectory bound."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab_ref import ATTENTION_MAPS, read_safetensors
from attnlab_ref.io import read_json_metadata
from attnlab_ref.optim import AdamW, check_optim, clip_gradients, learning_rate
from attnlab_ref.uvit import UViT, UViTConfig, mse_and_grads
from test_golden import (ADAM_CAP, ADAM_K, BRANCH_RTOL, FINAL_ATOL, FINAL_RTOL, GRAD_ATOL,
                         GRAD_NOISE_RTOL, GRAD_RTOL, LOSS_RTOL, STEP_LOSS_RTOL, STEPS, TWIN_K,
                         TWINS, Checker)

REPO = Path(__file__).resolve().parents[2]
PRED_RTOL, PRED_ATOL = 1e-4, 1e-7  # as the logits of the token models


@pytest.fixture(scope="module")
def uvit_cases():
    binary = Path(os.environ.get("ATTNLAB_BIN", REPO / "build" / "attnlab"))
    if not binary.is_file():
        why = f"C++ binary {binary} not found"
        if os.environ.get("ATTNLAB_REQUIRE_GOLDEN", "") not in ("", "0"):
            pytest.fail(why + "; ATTNLAB_REQUIRE_GOLDEN is set", pytrace=False)
        pytest.skip(why)
    out = tempfile.mkdtemp(prefix="attnlab-golden-uvit-")
    proc = subprocess.run([str(binary), "golden-uvit", "--out", out], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    yield sorted(d for d in Path(out).iterdir() if d.is_dir())
    shutil.rmtree(out, ignore_errors=True)


def train(model, x, t, y, target, optim, on_step=None):
    adam = AdamW({n: p.data for n, p in model.named_parameters()}, optim)
    losses = []
    for s in range(STEPS):
        _, loss, grads = mse_and_grads(model, x, t, y, target)
        losses.append(float(loss))
        clip_gradients(grads, optim["clip"])
        lr = learning_rate(s, optim)
        adam.step(grads, lr)
        if on_step:
            on_step(s, lr, grads, adam)
    return torch.tensor(losses, dtype=torch.float64)


def check_uvit_case(case_dir):
    ck = Checker(case_dir.name)
    params, _ = read_safetensors(case_dir / "model.safetensors")
    golden, meta = read_safetensors(case_dir / "golden.safetensors")
    cfg = UViTConfig.from_json(read_json_metadata(meta, "model", case_dir / "golden.safetensors"))
    optim = check_optim(read_json_metadata(meta, "optim", case_dir / "golden.safetensors"))
    model = UViT(cfg)
    model.load_params(params)
    names = list(model.param_shapes())
    x, target = (torch.from_numpy(golden[k]).double() for k in ("x", "target"))
    t, y = (torch.from_numpy(golden[k]).long() for k in ("t", "y"))
    pred, loss, grads = mse_and_grads(model, x, t, y, target)
    ck.compare("pred", golden["pred"], pred, PRED_RTOL, PRED_ATOL)
    ck.compare("loss", golden["loss"], loss.reshape(1), LOSS_RTOL)
    for n in names:
        ck.compare(f"grad.{n}", golden[f"grad.{n}"], grads[n], GRAD_RTOL, GRAD_ATOL)

    slack = {n: torch.zeros(s, dtype=torch.float64) for n, s in model.param_shapes().items()}

    def on_step(s, lr, step_grads, adam):
        c2 = 1 - optim["beta2"] ** adam.t
        for n in names:
            g = step_grads[n]
            noise = GRAD_NOISE_RTOL * float(g.abs().max())
            slack[n] += lr * (ADAM_K * noise / (torch.sqrt(adam.v[n] / c2) + optim["eps"])).clamp(max=ADAM_CAP)

    losses = train(model, x, t, y, target, optim, on_step)
    twins = []
    for nudge in range(TWINS):  # the float32 twins of test_golden.py
        rng = np.random.default_rng(nudge)
        start = {n: (np.nextafter(v, rng.choice(np.array([-np.inf, np.inf], dtype=np.float32), size=v.shape))
                     if nudge else v) for n, v in params.items()}
        twin = UViT(cfg).float()
        twin.load_params(start)
        t_losses = train(twin, x.float(), t, y, target.float(), optim)
        twins.append((t_losses.double(), {n: p.detach().double() for n, p in twin.named_parameters()}))
    spread = max(float((tl - losses).abs().max()) for tl, _ in twins)
    ck.compare("step_losses", golden["step_losses"], losses,
               tol=STEP_LOSS_RTOL * float(losses.abs().max()) + TWIN_K * spread)
    branch = BRANCH_RTOL * sum(learning_rate(s, optim) for s in range(STEPS))
    for n, p in model.named_parameters():
        p = p.detach()
        tight = FINAL_RTOL * float(p.abs().max()) + FINAL_ATOL + slack[n]
        d_twin = torch.stack([(tp[n] - p).abs() for _, tp in twins]).amax(dim=0)
        ck.compare_final(f"final.{n}", golden[f"final.{n}"], p, tight, d_twin, branch)
    return ck


def test_uvit_cases_cover_every_map_and_the_cogformer(uvit_cases):
    maps, cogformer = set(), False
    for d in uvit_cases:
        _, meta = read_safetensors(d / "golden.safetensors")
        att = read_json_metadata(meta, "model", d / "golden.safetensors")["attention"]
        maps |= set(att)
        cogformer |= len(att) >= 5 and att[0] == att[-1] == "softmax" and set(att[1:-1]) == {"cog"}
    assert maps == set(ATTENTION_MAPS) and cogformer


def test_uvit_matches_reference(uvit_cases):
    failures = []
    for d in uvit_cases:
        failures += check_uvit_case(d).failures
    assert not failures, "\n".join(failures)


def test_uvit_checker_catches_a_wrong_gradient(uvit_cases, tmp_path):
    case = tmp_path / uvit_cases[0].name
    shutil.copytree(uvit_cases[0], case)
    golden, meta = read_safetensors(case / "golden.safetensors")
    from attnlab_ref import write_safetensors
    golden["grad.blocks.2.skip.weight"] = golden["grad.blocks.2.skip.weight"] * np.float32(1.01)
    write_safetensors(case / "golden.safetensors", golden, meta)
    assert any("grad.blocks.2.skip.weight" in f for f in check_uvit_case(case).failures)
