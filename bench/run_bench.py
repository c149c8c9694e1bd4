#!/usr/bin/python3
"""`make bench`: attnlab against its PyTorch peer on the reference configurations bench-r1 ..
bench-r4, alternating the two programs, and a context-length scaling table for R1.

Every (configuration, map, threads) cell runs attnlab and PyTorch --repeat times, alternating,
and keeps the best tokens/s of each (the least disturbed run on a shared machine); the spread
of the repeats is printed too. PyTorch runs in its default setup and, with 2 threads, also
with OpenBLAS on one thread; both ratios are printed. Example:
    /usr/bin/python3 bench/run_bench.py --attnlab build/attnlab [--all] [--json-out FILE]
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "bench", "peer_pytorch.py")
CONFIGS = [("R1", "bench-r1"), ("R2", "bench-r2"), ("R3", "bench-r3"), ("R4", "bench-r4")]
SCALING_T = [64, 128, 256, 512]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def attention_maps(attnlab):
    """The map names of attnlab's registry, read from `attnlab config --list`."""
    text = subprocess.run([attnlab, "config", "--list"], capture_output=True, text=True, check=True).stdout
    doc = text.split("model.attention =", 1)[1].split("\n")[1]
    return [m.strip() for m in re.search(r"\(([^)]*)\)", doc).group(1).split(",")]


def measure(a, recipe, settings, threads, steps, warmup):
    """attnlab and PyTorch alternately, a.repeat times each; the best and all tokens/s.
    PyTorch runs in its default setup (torch.set_num_threads(N), OpenBLAS on N threads)
    and, with N > 1, also with OpenBLAS on one thread, which is faster here: its
    threads and torch's OpenMP threads otherwise contend for the same cores."""
    sets = [x for s in settings for x in ("--set", s)]
    common = ["--recipe", recipe, *sets, "--threads", str(threads), "--steps", str(steps), "--warmup",
              str(warmup), "--json"]
    ours, peer, peer_blas1 = [], [], []
    for _ in range(a.repeat):
        ours.append(run_json([a.attnlab, "bench", *common]))
        peer.append(run_json([sys.executable, PEER, "--attnlab", a.attnlab, *common]))
        if threads > 1:
            peer_blas1.append(run_json([sys.executable, PEER, "--attnlab", a.attnlab, *common, "--blas-threads", "1"]))
    best = lambda rs: max(rs, key=lambda r: r["tokens_per_s"])  # noqa: E731
    o, p = best(ours), best(peer)
    p_best = best(peer + peer_blas1)
    if abs(o["flops_per_step"] - p["flops_per_step"]) > 1e-6 * o["flops_per_step"]:
        sys.exit(f"error: FLOP counts differ for {recipe} {settings}: attnlab {o['flops_per_step']}, "
                 f"peer {p['flops_per_step']}")
    spread = lambda rs: (max(r["tokens_per_s"] for r in rs) / min(r["tokens_per_s"] for r in rs) - 1)  # noqa: E731
    return {"recipe": recipe, "settings": settings, "threads": threads, "attnlab": o, "pytorch": p,
            "pytorch_best": p_best, "pytorch_best_setup": "OpenBLAS 1 thread" if p_best in peer_blas1 else "default",
            "attnlab_runs": [r["tokens_per_s"] for r in ours], "pytorch_runs": [r["tokens_per_s"] for r in peer],
            "pytorch_blas1_runs": [r["tokens_per_s"] for r in peer_blas1],
            "attnlab_peaks": [r["peak_gflops"] for r in ours],
            "attnlab_spread": spread(ours), "pytorch_spread": spread(peer),
            "ratio": o["tokens_per_s"] / p["tokens_per_s"], "ratio_best": o["tokens_per_s"] / p_best["tokens_per_s"]}


def peak_by_threads(rows):
    """The best sgemm peak attnlab measured at each thread count in this session: one
    disturbed peak measurement must not inflate a cell's fraction of peak."""
    peaks = {}
    for r in rows:
        peaks[r["threads"]] = max(peaks.get(r["threads"], 0), *r["attnlab_peaks"])
    return peaks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attnlab", default=os.path.join(ROOT, "build", "attnlab"))
    ap.add_argument("--all", action="store_true", help="every attention map, not only softmax and cog")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each program per cell")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--configs", default="R1,R2,R3,R4", help="subset of R1,R2,R3,R4")
    ap.add_argument("--no-scaling", action="store_true", help="skip the context-length table")
    ap.add_argument("--json-out", help="also write every measurement to this file")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    maps = attention_maps(a.attnlab) if a.all else ["softmax", "cog"]
    wanted = a.configs.split(",")

    rows = []
    for label, recipe in CONFIGS:
        if label not in wanted:
            continue
        for m in ["-"] if recipe == "bench-r4" else maps:
            for t in threads:
                log(f"{label} {m} {t} threads ...")
                r = measure(a, recipe, [] if m == "-" else [f"model.attention={m}"], t, a.steps, a.warmup)
                r["label"], r["map"] = label, m
                rows.append(r)

    peaks = peak_by_threads(rows)
    print(f"\nattnlab vs PyTorch (best of {a.repeat} alternating runs each; {a.steps} timed steps after "
          f"{a.warmup} warm-up; % peak: of the best sgemm peak measured at that thread count, "
          + ", ".join(f"{t} threads {g:.0f} GFLOP/s" for t, g in sorted(peaks.items())) + ")")
    print("PyTorch: its default setup; 'best': also with OpenBLAS on one thread (faster with 2 threads)")
    head = (f"{'cfg':<4}{'map':<12}{'thr':>4}{'attnlab tok/s':>14}{'GFLOP/s':>9}{'% peak':>8}"
            f"{'PyTorch tok/s':>14}{'best':>8}{'ratio':>8}{'vs best':>9}{'spread a/p':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        o, p, pb = r["attnlab"], r["pytorch"], r["pytorch_best"]
        print(f"{r['label']:<4}{r['map']:<12}{r['threads']:>4}{o['tokens_per_s']:>14.0f}{o['gflops']:>9.1f}"
              f"{100 * o['gflops'] / peaks[r['threads']]:>7.1f}%{p['tokens_per_s']:>14.0f}{pb['tokens_per_s']:>8.0f}"
              f"{r['ratio']:>7.2f}x{r['ratio_best']:>8.2f}x{100 * r['attnlab_spread']:>6.0f}%/{100 * r['pytorch_spread']:.0f}%")

    # Thread scaling and the spread over maps, from the rows above.
    def tps(label, m, t):
        return next((r["attnlab"]["tokens_per_s"] for r in rows
                     if r["label"] == label and r["map"] == m and r["threads"] == t), None)
    if len(threads) > 1:
        lo, hi = min(threads), max(threads)
        print(f"\nthread scaling of attnlab ({hi} threads / {lo} thread):")
        for r in rows:
            if r["threads"] == hi and tps(r["label"], r["map"], lo):
                print(f"  {r['label']} {r['map']:<11} {r['attnlab']['tokens_per_s'] / tps(r['label'], r['map'], lo):.2f}x")
    if len(maps) > 1:
        print("\nattnlab tokens/s of each map relative to softmax:")
        for label, _ in CONFIGS:
            for t in threads:
                base = tps(label, "softmax", t)
                if base:
                    rel = "  ".join(f"{m} {tps(label, m, t) / base:.2f}" for m in maps if tps(label, m, t))
                    print(f"  {label} {t} threads: {rel}")

    scaling = []
    if not a.no_scaling:
        t = max(threads)
        for T in SCALING_T:
            log(f"scaling R1 T={T} ...")
            steps = max(4, a.steps * 64 // T)
            r = measure(a, "bench-r1", [f"train.context={T}"], t, steps, 2)
            r["T"] = T
            scaling.append(r)
        print(f"\nR1 context scaling, batch 64, {t} threads (attention share: attnlab's profiled pass)")
        head = (f"{'T':>5}{'attnlab tok/s':>15}{'GFLOP/s':>9}{'attention':>11}{'PyTorch tok/s':>15}"
                f"{'best':>8}{'ratio':>8}{'vs best':>9}")
        print(head)
        print("-" * len(head))
        for r in scaling:
            o, p, pb = r["attnlab"], r["pytorch"], r["pytorch_best"]
            print(f"{r['T']:>5}{o['tokens_per_s']:>15.0f}{o['gflops']:>9.1f}{100 * o['attention_share']:>10.1f}%"
                  f"{p['tokens_per_s']:>15.0f}{pb['tokens_per_s']:>8.0f}{r['ratio']:>7.2f}x{r['ratio_best']:>8.2f}x")

    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"rows": rows, "scaling": scaling}, f, indent=2)


if __name__ == "__main__":
    main()
