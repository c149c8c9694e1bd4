#!/usr/bin/python3
"""The PyTorch peer of `attnlab bench`: the same model, data shapes and optimizer written the
way a PyTorch user would (the attnlab_ref reference model cast to float32; nn.LSTM for the
LSTM), timed the same way, printing the same figures (tokens/s, steps/s, model GFLOP/s).

The configuration comes from attnlab itself (`attnlab config --recipe NAME`), so a recipe
has one definition; --set overrides keys as in attnlab. Example:
    /usr/bin/python3 bench/peer_pytorch.py --recipe bench-r1 --threads 2 --set model.attention=cog
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def early_option(argv, name, default):
    """An option's value read before argparse runs: torch reads its environment on import."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


# Debian's torch runs its own loops on OpenMP threads and its matrix products in
# OpenBLAS (the pthread build), which takes its thread count from the environment.
os.environ["OMP_NUM_THREADS"] = early_option(sys.argv, "--threads", "1")
os.environ["OPENBLAS_NUM_THREADS"] = early_option(sys.argv, "--blas-threads", os.environ["OMP_NUM_THREADS"])

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from attnlab_ref import ModelConfig, build_model, init_params, masked_cross_entropy  # noqa: E402
from attnlab_ref.optim import decays, learning_rate  # noqa: E402


def load_config(attnlab, recipe, config_file, settings):
    """The resolved configuration of a recipe, or of a TOML file over attnlab's defaults
    (`attnlab config --list`), with key=value overrides."""
    def attnlab_out(*args):
        out = subprocess.run([attnlab, *args], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"error: `{attnlab} {' '.join(args)}` failed: {out.stderr.strip()}")
        return out.stdout

    if recipe:
        cfg = tomllib.loads(attnlab_out("config", "--recipe", recipe))
    else:
        cfg = {}
        for line in attnlab_out("config", "--list").splitlines():  # "section.key = value" lines
            if line and not line[0].isspace() and " = " in line:
                key, value = line.split(" = ", 1)
                section, name = key.split(".", 1)
                cfg.setdefault(section, {})[name] = tomllib.loads(f"v = {value}")["v"]
        with open(config_file, "rb") as f:
            for section, keys in tomllib.load(f).items():
                cfg.setdefault(section, {}).update(keys)
    for s in settings:
        key, sep, value = s.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in cfg or name not in cfg[section]:
            sys.exit(f"error: --set {s!r}: expected section.key=value with a known key")
        old = cfg[section][name]
        cfg[section][name] = value if isinstance(old, (list, str)) else type(old)(value)
    return cfg


def task_vocab(task):
    if task["name"] != "iarc":
        sys.exit(f"error: the peer knows the vocabulary of task iarc only, not {task['name']!r}")
    return task["n"] + 4  # N data tokens and the four control tokens I, A, R, C


def training_flops(m, B, T, vocab):
    """Matmul FLOPs of one training step, the count of src/train/bench.cpp
    (docs/performance.md): 2 M N K per product, backward twice the forward,
    attention over the causal triangle."""
    N, C, L = B * T, m["dim"], m["layers"]
    arch = m["arch"]
    if arch in ("transformer", "cisformer"):
        F = m["ffn_mult"] * C
        fc = 2 * F if m["ffn_act"] == "swiglu" else F
        forward = L * 2 * N * (C * 3 * C + C * C + C * fc + F * C) + 2 * N * C * vocab
        attention = 3 * L * 2 * (2 * B * (T * (T + 1) / 2) * C)
        return 3 * forward + attention
    if arch == "lstm":
        return 3 * (L * (2 * N * C * 4 * C + 2 * B * (T - 1) * C * 4 * C) + 2 * N * C * vocab)
    W = m["window"] or T
    F = m["hidden"] or 4 * C
    return 3 * 2 * N * (W * C * F + (L - 1) * F * F + F * vocab)


class LSTMPeer(nn.Module):
    """Embedding -> nn.LSTM (L layers, width C) -> linear head: the PyTorch way."""

    def __init__(self, vocab, C, L):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, C)
        self.lstm = nn.LSTM(C, C, num_layers=L, batch_first=True)
        self.head = nn.Linear(C, vocab)

    def forward(self, inputs):
        h, _ = self.lstm(self.tok_emb(inputs))
        return self.head(h)


def build(cfg, vocab):
    m, T = cfg["model"], cfg["train"]["context"]
    if m["arch"] == "lstm":
        return LSTMPeer(vocab, m["dim"], m["layers"]).float()
    attention = m["attention"]
    maps = attention.split(",") if "," in attention else [attention] * m["layers"]
    if attention == "cogformer":
        maps = ["softmax"] + ["cog"] * (m["layers"] - 2) + ["softmax"]
    mc = ModelConfig.from_json({
        "arch": m["arch"], "vocab": vocab, "dim": m["dim"], "layers": m["layers"],
        "heads": m["heads"], "context": T, "ffn_mult": m["ffn_mult"], "ffn_act": m["ffn_act"],
        "norm": m["norm"], "norm_position": m["norm_position"], "pos": m["pos"],
        "attention": maps, "cis_maps": m["cis_maps"], "window": m["window"], "hidden": m["hidden"]})
    model = build_model(mc)
    init_params(model, seed=cfg["train"]["seed"])
    return model.float()  # the reference is float64; speed is compared in float32


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attnlab", default=os.path.join(ROOT, "build", "attnlab"),
                    help="the attnlab binary that resolves the configuration")
    ap.add_argument("--recipe", help="named recipe, e.g. bench-r1")
    ap.add_argument("--config", help="TOML file with [model], [task], [train]")
    ap.add_argument("--set", action="append", default=[], help="override one key, e.g. model.attention=cog")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--blas-threads", type=int, help="OpenBLAS threads under torch (default: --threads)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    if bool(a.recipe) == bool(a.config):
        sys.exit("error: give exactly one of --recipe NAME or --config FILE")
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        sys.exit("error: --threads and --steps must be >= 1, --warmup >= 0")

    torch.set_num_threads(a.threads)
    cfg = load_config(a.attnlab, a.recipe, a.config, a.set)
    tc, vocab = cfg["train"], task_vocab(cfg["task"])
    B, T = tc["batch"], tc["context"]
    torch.manual_seed(tc["seed"])
    model = build(cfg, vocab)

    params = list(model.named_parameters())
    groups = [{"params": [p for n, p in params if decays(n, p)], "weight_decay": tc["weight_decay"]},
              {"params": [p for n, p in params if not decays(n, p)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=tc["lr"], betas=(tc["beta1"], tc["beta2"]), eps=1e-8, foreach=True)
    schedule = {"lr": tc["lr"], "warmup": tc["warmup"], "total_steps": tc["steps"],
                "schedule": tc["schedule"], "min_lr_ratio": tc["min_lr_ratio"]}

    # A few random batches with about the iarc task's share of counted targets, made
    # before timing (attnlab's timing includes sampling its task; this one does not).
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randint(vocab, (B, T), generator=gen), torch.randint(vocab, (B, T), generator=gen),
                torch.rand(B, T, generator=gen) < 0.85) for _ in range(4)]

    step = 0

    def train_step():
        nonlocal step
        inputs, targets, counted = batches[step % len(batches)]
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, schedule)
        opt.zero_grad(set_to_none=True)
        loss = masked_cross_entropy(model(inputs), targets, counted)
        loss.backward()
        if tc["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc["clip"])
        opt.step()
        step += 1

    for _ in range(a.warmup):
        train_step()
    times = []
    t_pass = time.perf_counter()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - t0)
    step_s = (time.perf_counter() - t_pass) / a.steps
    times.sort()
    flops = training_flops(cfg["model"], B, T, vocab)
    r = {"implementation": f"pytorch {torch.__version__}", "threads": a.threads, "batch": B,
         "context": T, "steps": a.steps, "warmup": a.warmup, "tokens_per_s": B * T / step_s,
         "steps_per_s": 1 / step_s, "step_ms": 1e3 * step_s, "step_min_ms": 1e3 * times[0],
         "step_median_ms": 1e3 * times[len(times) // 2], "flops_per_step": flops,
         "gflops": flops / step_s / 1e9}
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"pytorch {torch.__version__}: {cfg['model']['arch']}, batch {B} x {T} tokens, {a.threads} threads")
        print(f"throughput  {r['tokens_per_s']:.0f} tokens/s, {r['steps_per_s']:.2f} steps/s  (mean of "
              f"{a.steps} steps after {a.warmup} warm-up; step {r['step_ms']:.2f} ms, fastest "
              f"{r['step_min_ms']:.2f} ms, median {r['step_median_ms']:.2f} ms)")
        print(f"model       {flops / 1e9:.3f} GFLOP per step  ->  {r['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
