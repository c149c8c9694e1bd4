#!/usr/bin/env python3
"""Data-parallel training under mpirun, for real: 50 steps with 2 ranks against 1
process (final loss within 1e-5 relative), 2 ranks twice (bitwise equal), a run
stopped with 1 process and resumed with 2, the error for a global batch that the
ranks cannot share, and `sweep --launcher mpi` against a local sweep.
    tests/mpi/test-mpi.py path/to/attnlab      (exit 0: pass, 1: fail)"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = str(Path(sys.argv[1]).resolve())
ENV = dict(os.environ,
           OMP_NUM_THREADS="1",
           # mpirun as root, in a container without network or ptrace:
           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="self,vader", OMPI_MCA_btl_vader_single_copy_mechanism="none",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_hwloc_base_binding_policy="none")
CONFIG = """[model]
arch = "transformer"
attention = "softmax"
layers = 2
dim = 16
heads = 2
[task]
name = "ladder"
n = 8
k = 2
[train]
steps = 50
batch = 8
context = 16
lr = 0.003
warmup = 5
threads = 1
log_every = 1
eval_every = 25
eval_windows = 24
"""
failures = []


def run(args, ranks=0, expect_ok=True):
    cmd = (["mpirun", "-np", str(ranks)] if ranks else []) + [BIN] + args
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    if expect_ok and p.returncode != 0:
        sys.exit(f"FAIL: `{' '.join(cmd)}` exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def summary(d):
    return json.loads((d / "summary.json").read_text())


def losses(d):
    rows = (d / "metrics.csv").read_text().splitlines()[1:]
    return [float(r.split(",")[1]) for r in rows]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


tmp = Path(tempfile.mkdtemp(prefix="attnlab-mpi-test-"))
try:
    cfg = tmp / "run.toml"
    cfg.write_text(CONFIG)
    one, two, two_again = tmp / "r1", tmp / "r2", tmp / "r2b"
    run(["train", "--config", str(cfg), "--out", str(one), "--quiet"])
    run(["train", "--config", str(cfg), "--out", str(two), "--quiet"], ranks=2)
    run(["train", "--config", str(cfg), "--out", str(two_again), "--quiet"], ranks=2)
    s1, s2 = summary(one), summary(two)
    check(s1["steps"] == s2["steps"] == 50, "both runs trained 50 steps")
    d = rel(s2["train_loss"], s1["train_loss"])
    check(d < 1e-5, f"final loss, 2 ranks vs 1 process: {s2['train_loss']:.9f} vs "
          f"{s1['train_loss']:.9f}, relative difference {d:.2e} < 1e-5")
    worst = max(rel(a, b) for a, b in zip(losses(two), losses(one)))
    check(worst < 1e-5, f"every step's loss within 1e-5 relative (worst {worst:.2e})")
    d = rel(s2["eval_loss"], s1["eval_loss"])
    check(d < 1e-5, f"evaluation split over 2 ranks: eval loss relative difference {d:.2e}")
    check(s1["train_loss"] != losses(one)[0], "the loss moved (the test is not vacuous)")
    same = ((two / "model.safetensors").read_bytes() == (two_again / "model.safetensors").read_bytes()
            and (two / "metrics.csv").read_text().split("\n")[1:][0].split(",")[:7]
            == (two_again / "metrics.csv").read_text().split("\n")[1:][0].split(",")[:7]
            and [l.split(",")[:7] for l in (two / "metrics.csv").read_text().splitlines()]
            == [l.split(",")[:7] for l in (two_again / "metrics.csv").read_text().splitlines()])
    check(same, "2 ranks twice: bitwise equal parameters and metrics")
    check(sorted(f.name for f in two.iterdir()) == sorted(f.name for f in one.iterdir()),
          "the run folder of 2 ranks holds the same files as that of 1 process")

    # Resume with a different rank count: 25 steps with 1 process, the rest with 2.
    res = tmp / "resumed"
    run(["train", "--config", str(cfg), "--out", str(res), "--quiet", "--stop-after", "25"])
    run(["train", "--resume", str(res), "--quiet"], ranks=2)
    d = rel(summary(res)["train_loss"], s1["train_loss"])
    check(d < 1e-5, f"stopped at 25 with 1 process, resumed with 2 ranks: final loss relative "
          f"difference {d:.2e}")

    p = run(["train", "--config", str(cfg), "--out", str(tmp / "bad"), "--set", "train.batch=7"],
            ranks=2, expect_ok=False)
    check(p.returncode != 0 and "cannot be split over 2 MPI ranks" in p.stderr,
          "batch 7 over 2 ranks is refused with a clear error")

    grid = tmp / "grid.toml"
    grid.write_text("[base]\n" + CONFIG.replace("[model]", "[base.model]").replace(
        "[task]", "[base.task]").replace("[train]", "[base.train]").replace(
        "steps = 50", "steps = 10").replace("threads = 1\n", "") +
        '[grid]\n"model.attention" = ["softmax", "cog"]\n"train.seed" = [1, 2]\n')
    run(["sweep", "--grid", str(grid), "--out", str(tmp / "local"), "--jobs", "2"])
    p = run(["sweep", "--grid", str(grid), "--out", str(tmp / "mpi"), "--launcher", "mpi"], ranks=2)
    check("4 trained now over 2 ranks, 0 failed" in p.stdout, "sweep --launcher mpi trained 4 runs")
    strip = lambda f: [l.split(",")[:6] for l in f.read_text().splitlines()]
    check(strip(tmp / "local" / "runs.csv") == strip(tmp / "mpi" / "runs.csv"),
          "the MPI sweep's results equal the local sweep's")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print("FAIL: " + "; ".join(failures) if failures else "PASS")
sys.exit(1 if failures else 0)
