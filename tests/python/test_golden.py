"""Golden test: the C++ engine (`attnlab golden --out DIR`) against the independent float64
PyTorch reference, per case: logits, loss, every parameter gradient, the losses of ten AdamW
steps and the final parameters. Also checks the cases cover every attention map, the
cogformer preset and every positional encoding, and tests the checker itself on a float32
stand-in engine (fake_engine.py) with and without planted bugs."""

import json
import shutil

import numpy as np
import pytest
import torch

import fake_engine
from attnlab_ref import ATTENTION_MAPS, POSITIONAL, ModelConfig, build_model, read_safetensors
from attnlab_ref.io import CheckpointError, read_json_metadata
from attnlab_ref.model import CIS_MAPS, FFN_ACTS, NORM_POSITIONS, NORMS
from attnlab_ref.optim import check_optim, learning_rate, loss_and_grads, train_on_batch

STEPS = 10  # optimizer steps in the contract; step_losses has this length

# ----------------------------------------------------------------------------- tolerances
#
# The engine computes in float32 (unit roundoff u = 6e-8); the reference recomputes in float64
# from the very same float32 parameters and batch, so every difference is the engine's own
# rounding. Each tensor passes if   max|engine - ref| <= rtol * max|ref| + atol.
# The error of a sum or dot product scales with the magnitude of its terms, not of its result,
# so the bound is relative to the largest element of the tensor (elements that are small by
# cancellation carry an absolute error of the tensor's scale). Measured on the float32
# stand-in engine (fake_engine.py, also at dim 64, T 32, lr 1e-2, over dozens of seeds):
# logits <= 1.1e-6 relative, loss <= 2e-7, gradients <= 3e-5 (the quadratic map near
# s^2 ~ eps amplifies rounding of s; elsewhere ~1e-6). The bounds leave 15x..100x headroom
# for a hand-written engine whose sums run in other orders (test_checker_margin keeps
# the stand-in below 20% of each), and are still far below what a wrong formula produces
# (a changed map, eps, sign or schedule moves results by >= 1e-3 relative;
# test_checker_catches).
LOGITS_RTOL, LOGITS_ATOL = 1e-4, 1e-7
LOSS_RTOL = 1e-5      # a mean of logsumexps: errors average out, ~1e-7 relative observed
GRAD_RTOL, GRAD_ATOL = 5e-4, 1e-9  # backward chains more ops and sums over B*T positions
#
# The ten optimizer steps are another matter: training can be chaotic. A trajectory (large
# lr, post-norm, ReLU kinks, cog's jump at s = 0) may amplify O(u) differences step by step,
# and float32 and float64 runs of the same correct algorithm then end far apart. No fixed
# tolerance is both safe there and tight on a calm trajectory, so the check measures the
# trajectory: the reference is rerun in float32 TWINS times (the "twins": from the
# checkpoint's parameters, and from those moved by one float32 ulp at random), and the
# engine may differ from the float64 reference by TWIN_K times what the twins differ, plus
# the analytic bounds below. The engine is a float32 program like the twins, but its own
# rounding is one more random draw of a spread that three twins only sample: on chaotic
# trajectories (lr = 1e-2, post-norm, ReLU) a float32 stand-in engine has shown up to ~7x
# the twins' spread, hence TWIN_K = 20. On a calm trajectory the twins differ by ~1e-7
# relative and every bound stays tight.
TWINS, TWIN_K = 3, 20.0
STEP_LOSS_RTOL = 2e-5  # on top of the twins' spread; observed <= 1e-6 on calm trajectories
#
# Final parameters: Adam divides the momentum by sqrt(v), so an element whose gradient is
# tiny or zero by cancellation (e.g. the key bias under softmax, whose exact gradient is 0
# by shift invariance) has a float32 gradient made of rounding noise, and the engine moves
# it by up to ~lr per step in a random direction while the reference barely moves it. Each
# element therefore gets the analytic "tight" tolerance
#     tight = FINAL_RTOL * max|p_ref| + FINAL_ATOL
#             + sum_s lr_s * min(ADAM_CAP, ADAM_K * n_s / (sqrt(vhat_s) + eps))
# with n_s = GRAD_NOISE_RTOL * max|g_s| (the tensor's float32 gradient noise at step s, 20x
# what a float32 engine shows) and vhat_s the reference's bias-corrected second moment: a
# perturbation n of every gradient changes mhat by <= n and sqrt(vhat) by <= n, so the Adam
# direction m/(sqrt(v)+eps) changes by <= ~2n/(sqrt(vhat)+eps) (ADAM_K = 4 doubles that), and
# never by more than ADAM_CAP (by Cauchy-Schwarz |mhat|/sqrt(vhat) <= 1.02 for t <= 10,
# beta1 = 0.9, beta2 = 0.95, so two directions differ by < 2.1; 3 leaves room for other
# betas). Elements with a healthy gradient keep a bound far below one step's weight decay
# lr*wd*p; noise-driven ones get an lr-sized one.
# Beyond that, rounding can tip the trajectory at a kink (a ReLU unit or a cog score
# crossing 0): a few elements then take another branch, by up to ~0.5% of sum_s lr_s seen,
# and a twin may or may not take the same branch. So per tensor, with d = |engine - ref|
# and d_twin = the largest |twin - ref| of the twins:
#   every element:  d <= tight + TWIN_K * max(d_twin) + BRANCH_RTOL * sum_s lr_s
#   the bulk:       quantile_q(d / tight) <= max(1, TWIN_K * quantile_q(d_twin / tight)),
#                   q = FINAL_BULK_QUANTILE
# The first bounds what no correct engine exceeds (an element left out of the update moves
# by ~sum_s lr_s); the second holds the bulk of the elements to the float32 spread, and an
# optimizer bug (schedule, bias correction, weight decay on the wrong tensors, clipping)
# moves every element, so it fails there even when it hides under the first.
FINAL_RTOL, FINAL_ATOL = 2e-5, 1e-8
GRAD_NOISE_RTOL = 2e-5
ADAM_K, ADAM_CAP = 4.0, 3.0
BRANCH_RTOL = 0.02
FINAL_BULK_QUANTILE = 0.9


# ----------------------------------------------------------------------------- the checker

def _max_err_message(case, name, got, ref, tol):
    """None if |got - ref| <= tol element-wise, else a message naming case, tensor and errors."""
    err = (got - ref).abs()
    bad = err > tol
    if not bool(bad.any()) and bool(torch.isfinite(got).all()):
        return None
    if not bool(torch.isfinite(got).all()):
        return f"{case}: {name}: engine has non-finite values ({int((~torch.isfinite(got)).sum())} elements)"
    tol = torch.as_tensor(tol, dtype=err.dtype).expand_as(err)
    worst = int(torch.argmax(err - tol))
    idx = tuple(int(i) for i in np.unravel_index(worst, tuple(err.shape))) if err.ndim else ()
    return (f"{case}: {name}: max|engine - ref| = {float(err.max()):.3e}, max|ref| = "
            f"{float(ref.abs().max()):.3e}; {int(bad.sum())} of {err.numel()} elements out of tolerance; "
            f"worst at {list(idx)}: engine {float(got.flatten()[worst]):.9g}, ref "
            f"{float(ref.flatten()[worst]):.9g}, tolerance {float(tol.flatten()[worst]):.3e}")


class Checker:
    """Collects the failures of one case; `ratios` records max(err / tol) per tensor."""

    def __init__(self, case):
        self.case, self.failures, self.ratios = case, [], {}
        self.skip = ""  # why the case cannot be checked (an architecture the reference lacks)

    def fail(self, text):
        self.failures.append(f"{self.case}: {text}")

    def compare(self, name, got, ref, rtol=None, atol=0.0, tol=None):
        got = torch.as_tensor(got, dtype=torch.float64)
        if tuple(got.shape) != tuple(ref.shape):
            self.fail(f"{name}: engine shape {list(got.shape)}, reference shape {list(ref.shape)}")
            return
        if tol is None:
            tol = rtol * float(ref.abs().max()) + atol if ref.numel() else atol
        msg = _max_err_message(self.case, name, got, ref, tol)
        if msg:
            self.failures.append(msg)
        if got.numel():
            self.ratios[name] = float(((got - ref).abs() / torch.as_tensor(tol).clamp(min=1e-300)).max())

    def compare_final(self, name, got, ref, tight, d_twin, branch):
        """The two criteria for parameters after the optimizer steps (see the tolerances)."""
        got = torch.as_tensor(got, dtype=torch.float64)
        d = (got - ref).abs()
        if not d.numel():
            return
        drift = TWIN_K * float(d_twin.max())
        msg = _max_err_message(self.case, name, got, ref, tight + drift + branch)
        if msg:
            self.failures.append(msg + f" (tolerance includes {drift:.3e} = {TWIN_K:g} x the float32 "
                                 f"twins' largest difference and {branch:.3e} for a tipped branch)")
        q = FINAL_BULK_QUANTILE
        bulk = float(torch.quantile((d / tight).flatten(), q))
        bulk_limit = max(1.0, TWIN_K * float(torch.quantile((d_twin / tight).flatten(), q)))
        if bulk > bulk_limit:
            self.fail(f"{name}: the bulk of the tensor is off: the {q:.0%} quantile of |engine - ref| / "
                      f"tight tolerance is {bulk:.3g} > {bulk_limit:.3g} (max|engine - ref| = "
                      f"{float(d.max()):.3e}, median tight tolerance {float(tight.median()):.3e})")
        self.ratios[name] = float((d / (tight + drift + branch)).max())
        self.ratios["bulk." + name] = bulk / bulk_limit


def _expect(checker, tensors, name, dtype, shape):
    t = tensors.get(name)
    if t is None:
        checker.fail(f"golden file lacks tensor {name!r}")
        return None
    if t.dtype != np.dtype(dtype) or tuple(t.shape) != tuple(shape):
        checker.fail(f"{name}: expected {np.dtype(dtype)} {list(shape)}, got {t.dtype} {list(t.shape)}")
        return None
    return torch.from_numpy(t)


def float32_twin(cfg, params, inputs, targets, counted, optim, nudge):
    """The reference trained in float32 from `params`; if `nudge` > 0, each element moved one
    float32 ulp up or down at random (seed `nudge`). Returns (step losses, name -> final
    parameters), as float64."""
    rng = np.random.default_rng(nudge)
    start = {}
    for n, v in params.items():
        if nudge:
            direction = rng.choice(np.array([-np.inf, np.inf], dtype=np.float32), size=v.shape)
            v = np.nextafter(v, direction)
        start[n] = v
    twin = build_model(cfg).float()
    twin.load_params(start)
    losses = train_on_batch(twin, inputs, targets, counted, optim, STEPS)
    return (torch.tensor(losses, dtype=torch.float64),
            {n: p.detach().double() for n, p in twin.named_parameters()})


def check_case(case_dir):
    """Compares one case folder with the reference. Returns the Checker (failures, ratios)."""
    ck = Checker(case_dir.name)
    try:
        params, pmeta = read_safetensors(case_dir / "model.safetensors")
        golden, gmeta = read_safetensors(case_dir / "golden.safetensors")
        model_json = read_json_metadata(pmeta, "model", case_dir / "model.safetensors")
        if read_json_metadata(gmeta, "model", case_dir / "golden.safetensors") != model_json:
            ck.fail("the model JSON of golden.safetensors differs from model.safetensors'")
        optim = check_optim(read_json_metadata(gmeta, "optim", case_dir / "golden.safetensors"))
    except (OSError, CheckpointError, ValueError) as e:
        ck.fail(f"unreadable case: {e}")
        return ck
    for file, meta, kind in (("model", pmeta, "params"), ("golden", gmeta, "golden")):
        if meta.get("kind") != kind:
            ck.fail(f"{file}.safetensors has metadata kind {meta.get('kind')!r}, expected {kind!r}")
    try:
        model = build_model(ModelConfig.from_json(model_json))
    except NotImplementedError as e:  # an architecture the reference does not implement
        ck.skip = f"{ck.case}: {e}"
        return ck
    except ValueError as e:
        ck.fail(f"the reference cannot build model {json.dumps(model_json)}: {e}")
        return ck
    names = list(model.param_shapes())
    if list(params) != names and set(params) == set(names):
        ck.fail(f"model.safetensors lists the parameters in another order than the documented "
                f"arena order: file {list(params)}, documented {names}")
    try:
        model.load_params(params, source=str(case_dir / "model.safetensors"))
    except CheckpointError as e:
        ck.fail(str(e))
        return ck
    non_f32 = [n for n, t in params.items() if t.dtype != np.float32]
    if non_f32:
        ck.fail(f"model.safetensors: parameters must be F32, these are not: {non_f32}")

    expected = ({"inputs", "targets", "counted", "logits", "loss", "step_losses"}
                | {f"grad.{n}" for n in names} | {f"final.{n}" for n in names})
    extra = sorted(set(golden) - expected)
    if extra:
        ck.fail(f"golden file has unexpected tensors {extra}")
    if "inputs" not in golden or golden["inputs"].ndim != 2:
        ck.fail("golden file lacks a 2-d `inputs` tensor")
        return ck
    B, T = golden["inputs"].shape
    V = model.cfg.vocab
    shapes = model.param_shapes()
    got = {
        "inputs": _expect(ck, golden, "inputs", np.int32, (B, T)),
        "targets": _expect(ck, golden, "targets", np.int32, (B, T)),
        "counted": _expect(ck, golden, "counted", np.uint8, (B, T)),
        "logits": _expect(ck, golden, "logits", np.float32, (B, T, V)),
        "loss": _expect(ck, golden, "loss", np.float32, (1,)),
        "step_losses": _expect(ck, golden, "step_losses", np.float32, (STEPS,)),
    }
    for n in names:
        got[f"grad.{n}"] = _expect(ck, golden, f"grad.{n}", np.float32, shapes[n])
        got[f"final.{n}"] = _expect(ck, golden, f"final.{n}", np.float32, shapes[n])
    if any(t is None for t in got.values()):
        return ck
    inputs, targets, counted = got["inputs"].long(), got["targets"].long(), got["counted"]
    if not 1 <= T <= model.cfg.context or inputs.min() < 0 or inputs.max() >= V:
        ck.fail(f"inputs: window {T} (context {model.cfg.context}) or token ids outside 0..{V - 1}")
        return ck

    # Reference forward/backward at the initial parameters.
    logits, loss, grads = loss_and_grads(model, inputs, targets, counted)
    ck.compare("logits", got["logits"], logits, LOGITS_RTOL, LOGITS_ATOL)
    ck.compare("loss", got["loss"], loss.reshape(1), LOSS_RTOL)
    for n in names:
        ck.compare(f"grad.{n}", got[f"grad.{n}"], grads[n], GRAD_RTOL, GRAD_ATOL)

    # Ten AdamW steps, accumulating each element's Adam-noise allowance (see the tolerances).
    slack = {n: torch.zeros(shapes[n], dtype=torch.float64) for n in names}

    def on_step(s, lr, step_grads, adam):
        c2 = 1 - optim["beta2"] ** adam.t
        for n in names:
            g = step_grads[n]
            noise = GRAD_NOISE_RTOL * float(g.abs().max()) if g.numel() else 0.0
            direction_error = ADAM_K * noise / (torch.sqrt(adam.v[n] / c2) + optim["eps"])
            slack[n] += lr * direction_error.clamp(max=ADAM_CAP)

    losses = train_on_batch(model, inputs, targets, counted, optim, STEPS, on_step)
    twins = [float32_twin(model.cfg, params, inputs, targets, counted, optim, nudge)
             for nudge in range(TWINS)]

    losses = torch.tensor(losses, dtype=torch.float64)
    twin_spread = max(float((t_losses - losses).abs().max()) for t_losses, _ in twins)
    ck.compare("step_losses", got["step_losses"], losses,
               tol=STEP_LOSS_RTOL * float(losses.abs().max()) + TWIN_K * twin_spread)
    # Both are the loss at the initial parameters: equal up to a few ulps of summation order.
    first, loss0 = float(got["step_losses"][0]), float(got["loss"][0])
    if abs(first - loss0) > 1e-6 * abs(loss0):
        ck.fail(f"step_losses[0] = {first!r} differs from loss = {loss0!r}; both are the loss "
                f"at the initial parameters")
    branch = BRANCH_RTOL * sum(learning_rate(s, optim) for s in range(STEPS))
    for n, p in model.named_parameters():
        p = p.detach()
        tight = FINAL_RTOL * float(p.abs().max()) + FINAL_ATOL + slack[n]
        d_twin = torch.stack([(t_params[n] - p).abs() for _, t_params in twins]).amax(dim=0)
        ck.compare_final(f"final.{n}", got[f"final.{n}"], p, tight, d_twin, branch)
    return ck


# ----------------------------------------------------------------------------- coverage

def _is_cogformer(attention):
    return (len(attention) >= 3 and attention[0] == attention[-1] == "softmax"
            and all(a == "cog" for a in attention[1:-1]))


def coverage_problems(configs):
    """What the required golden coverage lacks: every attention map, a cogformer-style
    config, every positional encoding. configs: case name -> model JSON."""
    problems = []
    maps = {a for c in configs.values() for a in c.get("attention", [])}
    if set(ATTENTION_MAPS) - maps:
        problems.append(f"no case uses attention maps {sorted(set(ATTENTION_MAPS) - maps)}")
    if not any(_is_cogformer(c.get("attention", [])) for c in configs.values()):
        problems.append("no cogformer-style case (attention = softmax, cog..., softmax with >= 3 layers)")
    pos = {c.get("pos") for c in configs.values()}
    if set(POSITIONAL) - pos:
        problems.append(f"no case uses positional encodings {sorted(set(POSITIONAL) - pos)}")
    return problems


def extra_coverage_problems(configs):
    """Further features the reference implements and the golden set should exercise."""
    problems = []
    for key, valid in (("arch", ("transformer", "cisformer")), ("norm", NORMS),
                       ("norm_position", NORM_POSITIONS), ("ffn_act", FFN_ACTS)):
        seen = {c.get(key) for c in configs.values()}
        if set(valid) - seen:
            problems.append(f"no case uses {key} {sorted(set(valid) - seen)}")
    cis = {m for c in configs.values() if c.get("arch") == "cisformer" for m in c.get("cis_maps", [])}
    if set(CIS_MAPS) - cis:
        problems.append(f"no cisformer case makes {sorted(set(CIS_MAPS) - cis)} position-specific")
    if not any(c.get("arch") == "cisformer" and c.get("cis_rank", 0) > 0 for c in configs.values()):
        problems.append("no low-rank cisformer case (cis_rank > 0)")
    return problems


def case_configs(case_dirs):
    configs = {}
    for d in case_dirs:
        _, meta = read_safetensors(d / "golden.safetensors")
        configs[d.name] = read_json_metadata(meta, "model", d / "golden.safetensors")
    return configs


# ----------------------------------------------------------------------------- the tests

def test_golden(golden_case):
    ck = check_case(golden_case)
    if ck.skip and not ck.failures:
        pytest.skip(ck.skip)
    if ck.failures:
        pytest.fail("\n".join(ck.failures), pytrace=False)


def test_golden_coverage(golden_cases):
    problems = coverage_problems(case_configs(golden_cases))
    if problems:
        pytest.fail("golden cases incomplete: " + "; ".join(problems), pytrace=False)


def test_golden_coverage_extras(golden_cases):
    problems = extra_coverage_problems(case_configs(golden_cases))
    if problems:
        pytest.fail("golden cases incomplete: " + "; ".join(problems), pytrace=False)


# The checker's own tests, on the float32 stand-in engine.

def test_checker_accepts_float32_engine(fake_golden_dir):
    cases = sorted(d for d in fake_golden_dir.iterdir())
    assert coverage_problems(case_configs(cases)) == []
    assert extra_coverage_problems(case_configs(cases)) == []
    failures = [f for d in cases for f in check_case(d).failures]
    assert failures == [], "\n".join(failures)


def test_checker_margin(fake_golden_dir):
    """A float32 engine must use well under the tolerances (headroom for the C++ engine)."""
    worst = {}
    for d in sorted(fake_golden_dir.iterdir()):
        for name, ratio in check_case(d).ratios.items():
            worst[f"{d.name}: {name}"] = ratio
    top = sorted(worst.items(), key=lambda kv: -kv[1])[:5]
    assert top[0][1] < 0.2, f"float32 errors use too much of the tolerance: {top}"


# (mutation, a tensor name the failure must mention, case to plant it in)
MUTATION_CASES = [
    ("weight_decay", "final.", "softmax_learned"),
    ("schedule", "final.", "cog_alibi"),
    ("attention", "logits", "cogformer_rope"),
    ("attention", "logits", "sigmoid_learned"),
    ("grad", "grad.blocks.0.attn.qkv.weight", "cis_default"),
    ("logits", "logits", "quadratic_rope"),
    ("step_losses", "step_losses", "extensive_none"),
]


@pytest.mark.parametrize("mutation, tensor, case", MUTATION_CASES,
                         ids=[f"{m}-{c}" for m, _, c in MUTATION_CASES])
def test_checker_catches(tmp_path, mutation, tensor, case):
    model, optim = fake_engine.CASES[case]
    d = fake_engine.write_case(tmp_path / case, model, optim, seed=3, mutate=mutation)
    failures = check_case(d).failures
    assert failures, f"planted {mutation} bug went unnoticed"
    assert any(f.startswith(f"{case}: {tensor}") for f in failures), failures


def test_checker_reports_contract_errors(tmp_path):
    from attnlab_ref import write_safetensors
    model, optim = fake_engine.CASES["softmax_learned"]
    d = fake_engine.write_case(tmp_path / "c", model, optim, seed=1)
    golden, meta = read_safetensors(d / "golden.safetensors")
    del golden["grad.head.bias"]
    golden["surprise"] = np.zeros(1, np.float32)
    write_safetensors(d / "golden.safetensors", golden, {**meta, "kind": "params"})
    text = "\n".join(check_case(d).failures)
    assert "grad.head.bias" in text and "surprise" in text and "kind" in text

    other = dict(model, pos="rope")
    write_safetensors(d / "golden.safetensors", golden, {**meta, "model": json.dumps(other)})
    assert any("model JSON" in f for f in check_case(d).failures)

    params, pmeta = read_safetensors(d / "model.safetensors")
    params.pop("head.bias")
    write_safetensors(d / "model.safetensors", params, pmeta)
    assert any("missing tensors ['head.bias']" in f for f in check_case(d).failures)


def test_coverage_detects_missing_features():
    configs = {n: m for n, (m, _) in fake_engine.CASES.items()}
    assert coverage_problems(configs) == []
    no_alibi = {n: m for n, m in configs.items() if m["pos"] != "alibi"}
    assert any("alibi" in p for p in coverage_problems(no_alibi))
    no_cogformer = {n: m for n, m in configs.items() if n != "cogformer_rope"}
    assert any("cogformer" in p for p in coverage_problems(no_cogformer))
    no_extensive = {n: m for n, m in configs.items() if "extensive" not in m["attention"]}
    assert any("extensive" in p for p in coverage_problems(no_extensive))


def test_golden_command_plumbing(tmp_path, monkeypatch):
    """The session's `attnlab golden --out DIR` runner, against stand-in executables."""
    import stat
    import sys

    import conftest

    def script(name, body):
        path = tmp_path / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    good = script("good", f"""import sys, pathlib
sys.path[:0] = {[str(conftest.REPO / 'python'), str(conftest.REPO / 'tests' / 'python')]}
import fake_engine
assert sys.argv[1:3] == ["golden", "--out"], sys.argv
model, optim = fake_engine.CASES["cogformer_rope"]
fake_engine.write_case(pathlib.Path(sys.argv[3]) / "cogformer_rope", model, optim, seed=0)
""")
    monkeypatch.setenv("ATTNLAB_BIN", str(good))
    monkeypatch.delenv("ATTNLAB_GOLDEN_DIR", raising=False)
    run = conftest._run_golden()
    assert not run.error and not run.skip and [d.name for d in run.cases] == ["cogformer_rope"]
    assert check_case(run.cases[0]).failures == []
    shutil.rmtree(run.temp_dir)

    bad = script("bad", "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    monkeypatch.setenv("ATTNLAB_BIN", str(bad))
    run = conftest._run_golden()
    shutil.rmtree(run.temp_dir)
    assert "exited with 3" in run.error and "boom" in run.error

    monkeypatch.setenv("ATTNLAB_BIN", str(tmp_path / "absent"))
    monkeypatch.delenv("ATTNLAB_REQUIRE_GOLDEN", raising=False)
    assert "not found" in conftest._run_golden().skip
    monkeypatch.setenv("ATTNLAB_REQUIRE_GOLDEN", "1")
    assert "not found" in conftest._run_golden().error
