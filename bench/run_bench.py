#!/usr/bin/python3
"""`make bench`: attnlab against its PyTorch peer (bench/peer_pytorch.py) on the reference
configurations and the shapes users train, alternating the programs, and a context-length
scaling table for R1.

Every (configuration, map, threads) cell runs attnlab and the peer --repeat times (at least 3),
alternating, and keeps the best tokens/s of each (the least disturbed run on a shared machine);
the spread of the repeats is printed too. The peer is the plain float32 PyTorch model with
torch, OpenMP and OpenBLAS set to the same thread count and glibc's malloc tuned for CPU
training (bench/peer_pytorch.py); with 2 threads it also runs with OpenBLAS on one thread, and
once per cell with glibc's default malloc; where the CPU has AVX-512 and the environment pins
OpenBLAS to other kernels (OPENBLAS_CORETYPE=Haswell), every peer run is repeated with
OpenBLAS's AVX-512 kernels (attnlab's own product kernel uses AVX-512 regardless); the best
setup counts. --reference adds the float64
reference model cast to float32 as a second peer row.

The fraction of peak uses, per thread count, the best sgemm peak that any attnlab run of the
session measured (each measures 3 rounds around its passes); where a run beat that peak or
the peaks disagree by more than 10 %, it prints "noisy" instead of a fraction (a run above the
OpenBLAS peak is not noise when attnlab's own kernel ran the layers and the run stayed below
that kernel's speed on the same product). Example:
    /usr/bin/python3 bench/run_bench.py --attnlab build/attnlab --configs R1,R2 [--json-out FILE]
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "bench", "peer_pytorch.py")
# label, recipe, settings, what it is
CONFIGS = [
    ("R1", "bench-r1", [], "transformer, 2 layers, d 64, batch 64 x 64"),
    ("R2", "bench-r2", [], "transformer, 4 layers, d 128, batch 32 x 128"),
    ("R3", "bench-r3", [], "cisformer shaped as R1"),
    ("R4", "bench-r4", [], "LSTM, 2 layers, hidden 128"),
    # The task-switching transformer of ~1.5M parameters (the shape of iarc-paper-transformer).
    ("TS", "iarc-quick", ["model.layers=4", "model.dim=176", "model.heads=4"],
     "IARC transformer, 4 layers, d 176 (1.51M parameters), batch 32 x 64"),
    # The byte-level text model (needs data/kjv.txt: `make corpus`).
    ("TXT", "text-small", [], "text transformer, 4 layers, d 128, RoPE, batch 32 x 64"),
    # The diffusion U-ViT (Fashion-MNIST 28 x 28, patch 4: 51 tokens per image); tokens/s
    # are images/s x 51, and its own table gives images/s.
    ("UVIT", "uvit-fmnist", [], "U-ViT, 7 blocks, d 96, 4 heads, FFN 2x, patch 4, batch 64 images"),
]
DEFAULT_CONFIGS = "R1,R2,R3,R4,TS,TXT,UVIT"
SCALING_T = [64, 128, 256, 512]
NOISY_PEAK_SPREAD = 0.10


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def peer_environments():
    """The OpenBLAS kernel sets the peer runs with: the environment's, and where the CPU has
    AVX-512 and the environment pins another set (OPENBLAS_CORETYPE=Haswell on this project's
    machines), OpenBLAS's AVX-512 kernels too: attnlab's own product kernel uses AVX-512
    whatever OpenBLAS is told, so the peer gets the faster OpenBLAS as well."""
    envs = [None]
    with open("/proc/cpuinfo") as f:
        avx512 = " avx512f " in f.read().replace("\n", " ")
    if avx512 and os.environ.get("OPENBLAS_CORETYPE", "") not in ("SkylakeX", "Cooperlake", ""):
        envs.append({**os.environ, "OPENBLAS_CORETYPE": "SkylakeX"})
    return envs


def tagged(result, env):
    """The peer's result with the OpenBLAS kernel set it ran with."""
    result["openblas_coretype"] = (env or os.environ).get("OPENBLAS_CORETYPE", "(chosen by OpenBLAS)")
    return result


def attention_maps(attnlab):
    """The map names of attnlab's registry, read from `attnlab config --list`."""
    text = subprocess.run([attnlab, "config", "--list"], capture_output=True, text=True, check=True).stdout
    doc = text.split("model.attention =", 1)[1].split("\n")[1]
    return [m.strip() for m in re.search(r"\(([^)]*)\)", doc).group(1).split(",")]


def measure(a, recipe, settings, threads, steps, warmup):
    """attnlab and the peers alternately, a.repeat times each; the best and all tokens/s."""
    sets = [x for s in settings for x in ("--set", s)]
    common = ["--recipe", recipe, *sets, "--threads", str(threads), "--steps", str(steps), "--warmup",
              str(warmup), "--json"]
    peer_cmd = [sys.executable, PEER, "--attnlab", a.attnlab, *common]
    ours, peer, peer_blas1, peer_glibc, ref = [], [], [], [], []
    for i in range(a.repeat):
        ours.append(run_json([a.attnlab, "bench", "--peak-n", str(a.peak_n), *common]))
        vocab = ["--vocab", str(ours[-1]["vocab"])]
        for env in peer_environments():
            peer.append(tagged(run_json(peer_cmd + vocab, env), env))
            if threads > 1:
                peer_blas1.append(tagged(run_json(peer_cmd + vocab + ["--blas-threads", "1"], env), env))
        if i == 0:  # glibc's default malloc, once: slower here, but the better setup counts
            peer_glibc.append(run_json(peer_cmd + vocab + ["--malloc", "default"]))
        if a.reference:
            ref.append(run_json(peer_cmd + vocab + ["--model", "reference"]))
    best = lambda rs: max(rs, key=lambda r: r["tokens_per_s"])  # noqa: E731
    o, p = best(ours), best(peer + peer_blas1 + peer_glibc)
    if abs(o["flops_per_step"] - p["flops_per_step"]) > 1e-6 * o["flops_per_step"]:
        sys.exit(f"error: FLOP counts differ for {recipe} {settings}: attnlab {o['flops_per_step']}, "
                 f"peer {p['flops_per_step']}")
    spread = lambda rs: (max(r["tokens_per_s"] for r in rs) / min(r["tokens_per_s"] for r in rs) - 1)  # noqa: E731
    row = {"recipe": recipe, "settings": settings, "threads": threads, "attnlab": o, "pytorch": p,
           "pytorch_setup": (f"OpenBLAS {p['blas_threads']} thread(s) with kernels {p.get('openblas_coretype')}, "
                             f"malloc {p['malloc']}"),
           "attnlab_runs": [r["tokens_per_s"] for r in ours],
           "attnlab_cpu_fraction": max((r.get("cpu_peak_fraction") or 0) for r in ours), "pytorch_runs": [r["tokens_per_s"] for r in peer],
           "pytorch_blas1_runs": [r["tokens_per_s"] for r in peer_blas1],
           "pytorch_glibc_malloc_runs": [r["tokens_per_s"] for r in peer_glibc],
           "attnlab_peaks": [g for r in ours for g in r["peak_round_gflops"]],
           "attnlab_own_gemm": max((r.get("own_gemm_gflops") or 0) for r in ours),
           "attnlab_matmul": o.get("matmul", "OpenBLAS"),
           "attnlab_spread": spread(ours), "pytorch_spread": spread(peer + peer_blas1),
           "ratio": o["tokens_per_s"] / p["tokens_per_s"]}
    if ref:
        row["reference"] = best(ref)
        row["reference_runs"] = [r["tokens_per_s"] for r in ref]
        row["ratio_reference"] = o["tokens_per_s"] / row["reference"]["tokens_per_s"]
    return row


def session_peaks(rows):
    """Per thread count: the best sgemm peak of all rounds of all attnlab runs, and the spread
    best / median round - 1 (the peak of one round can be lowered by other work, never raised)."""
    rounds, own = {}, {}
    for r in rows:
        rounds.setdefault(r["threads"], []).extend(r["attnlab_peaks"])
        own[r["threads"]] = max(own.get(r["threads"], 0), r.get("attnlab_own_gemm", 0))
    out = {}
    for t, g in rounds.items():
        g = sorted(g)
        out[t] = {"best": g[-1], "median": g[len(g) // 2], "spread": g[-1] / g[len(g) // 2] - 1, "rounds": len(g),
                  "own": own[t]}
    return out


def fraction(gflops, peak):
    """The fraction of the OpenBLAS sgemm peak as text, or why there is none. Where attnlab's own
    product kernel ran the layers (faster than OpenBLAS's kernels as the environment sets them),
    a run above the OpenBLAS peak is noise only if it also beat that kernel on the same product."""
    f = gflops / peak["best"]
    if gflops > max(peak["best"], peak.get("own", 0)) or peak["spread"] > NOISY_PEAK_SPREAD:
        return "noisy"
    return f"{100 * f:.1f}%"


def print_main_table(rows, peaks, a):
    print(f"\nattnlab vs PyTorch (best of {a.repeat} alternating runs each; {a.steps} timed steps after "
          f"{a.warmup} warm-up)")
    print("sgemm peak (" + f"{a.peak_n}^3, best of all rounds of all attnlab runs; spread best/median): "
          + ", ".join(f"{t} thread(s) {p['best']:.1f} GFLOP/s ({p['rounds']} rounds, spread {100 * p['spread']:.0f}%)"
                      for t, p in sorted(peaks.items())))
    if any(p.get("own") for p in peaks.values()):
        print("attnlab's own product kernel (which ran the layers) on the same product: "
              + ", ".join(f"{t} thread(s) {p['own']:.1f} GFLOP/s" for t, p in sorted(peaks.items()))
              + "; % peak is against OpenBLAS's sgemm and can exceed 100 %")
    print("PyTorch: plain float32 model, torch/OpenMP/OpenBLAS on N threads, glibc malloc tuned (with 2 "
          "threads also OpenBLAS on 1, once glibc's default malloc, and OpenBLAS's AVX-512 kernels where "
          "the environment pins others; the best setup counts)")
    print("% peak CPU (1 thread): attnlab's model FLOPs per CPU second against sgemm's per CPU second, "
          "best run (the slices other processes took cancel out)")
    ref = any("reference" in r for r in rows)
    head = (f"{'cfg':<5}{'map':<12}{'thr':>4}{'attnlab tok/s':>14}{'GFLOP/s':>9}{'% peak':>8}"
            f"{'PyTorch tok/s':>14}{'ratio':>8}" + (f"{'ref tok/s':>11}{'ratio':>8}" if ref else "")
            + f"{'spread a/p':>12}{'% peak CPU':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        o, p = r["attnlab"], r["pytorch"]
        line = (f"{r['label']:<5}{r['map']:<12}{r['threads']:>4}{o['tokens_per_s']:>14.0f}{o['gflops']:>9.1f}"
                f"{fraction(o['gflops'], peaks[r['threads']]):>8}{p['tokens_per_s']:>14.0f}{r['ratio']:>7.2f}x")
        if ref:
            line += (f"{r['reference']['tokens_per_s']:>11.0f}{r['ratio_reference']:>7.2f}x" if "reference" in r
                     else " " * 19)
        print(line + f"{100 * r['attnlab_spread']:>6.0f}%/{100 * r['pytorch_spread']:.0f}%"
              + (f"{100 * r['attnlab_cpu_fraction']:>9.1f}%" if r["threads"] == 1 else ""))
    images = [r for r in rows if "images_per_s" in r["attnlab"]]
    if images:
        print("\nU-ViT training, images/s (best runs above):")
        for r in images:
            print(f"  {r['label']} {r['map']:<11} {r['threads']} thr: attnlab {r['attnlab']['images_per_s']:.1f}, "
                  f"PyTorch {r['pytorch']['images_per_s']:.1f}")


def print_derived(rows, threads, maps):
    def tps(label, m, t):
        return next((r["attnlab"]["tokens_per_s"] for r in rows
                     if r["label"] == label and r["map"] == m and r["threads"] == t), None)
    print("\nPyTorch's fastest setup per cell:")
    for r in rows:
        print(f"  {r['label']} {r['map']:<11} {r['threads']} thr: {r['pytorch_setup']}")
    if len(threads) > 1:
        lo, hi = min(threads), max(threads)
        print(f"\nthread scaling of attnlab ({hi} threads / {lo} thread):")
        for r in rows:
            if r["threads"] == hi and tps(r["label"], r["map"], lo):
                print(f"  {r['label']} {r['map']:<11} {r['attnlab']['tokens_per_s'] / tps(r['label'], r['map'], lo):.2f}x")
    if len(maps) > 1:
        print("\nattnlab tokens/s of each map relative to softmax:")
        for label, *_ in CONFIGS:
            for t in threads:
                base = tps(label, "softmax", t)
                if base:
                    rel = "  ".join(f"{m} {tps(label, m, t) / base:.2f}" for m in maps if tps(label, m, t))
                    print(f"  {label} {t} threads: {rel}")
    print("\nmemory (attnlab, peak resident set against the analytic size of parameters, gradients, "
          "moments and activations):")
    for r in rows:
        o = r["attnlab"]
        analytic = (o["param_bytes"] + o["activation_bytes"]) / 2**20
        print(f"  {r['label']} {r['map']:<11} {r['threads']} thr: {o['peak_rss_bytes'] / 2**20:.1f} MiB "
              f"against {analytic:.1f} MiB ({o['params']} parameters)")


def scaling_table(a, threads):
    t = max(threads)
    scaling = []
    for T in SCALING_T:
        log(f"scaling R1 T={T} ...")
        steps = max(4, a.steps * 64 // T)
        r = measure(a, "bench-r1", [f"train.context={T}"], t, steps, 2)
        r["T"] = T
        scaling.append(r)
    print(f"\nR1 context scaling, batch 64, {t} threads (attention share: attnlab's profiled pass)")
    head = f"{'T':>5}{'attnlab tok/s':>15}{'GFLOP/s':>9}{'attention':>11}{'PyTorch tok/s':>15}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for r in scaling:
        o, p = r["attnlab"], r["pytorch"]
        print(f"{r['T']:>5}{o['tokens_per_s']:>15.0f}{o['gflops']:>9.1f}{100 * o['attention_share']:>10.1f}%"
              f"{p['tokens_per_s']:>15.0f}{r['ratio']:>7.2f}x")
    return scaling


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attnlab", default=os.path.join(ROOT, "build", "attnlab"))
    ap.add_argument("--all", action="store_true", help="every attention map, not only softmax and cog")
    ap.add_argument("--maps", help="comma-separated attention maps (default softmax,cog)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each program per cell (at least 3)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-n", type=int, default=2048, help="sgemm size of the peak")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="subset of " + ",".join(c[0] for c in CONFIGS))
    ap.add_argument("--reference", action="store_true", help="also time the reference model cast to float32")
    ap.add_argument("--scaling", action="store_true", help="add the context-length table (R1, T 64..512)")
    ap.add_argument("--json-out", help="also write every measurement to this file")
    a = ap.parse_args()
    if a.repeat < 3:
        sys.exit("error: --repeat must be at least 3 (best of 3 alternating runs each)")
    threads = [int(t) for t in a.threads.split(",")]
    maps = attention_maps(a.attnlab) if a.all else (a.maps.split(",") if a.maps else ["softmax", "cog"])
    wanted = a.configs.split(",")
    unknown = [w for w in wanted if w not in [c[0] for c in CONFIGS]]
    if unknown:
        sys.exit(f"error: unknown configuration(s) {unknown}; choose from {[c[0] for c in CONFIGS]}")

    rows = []
    for label, recipe, settings, _ in CONFIGS:
        if label not in wanted:
            continue
        for m in ["-"] if recipe == "bench-r4" else maps:
            for t in threads:
                log(f"{label} {m} {t} threads ...")
                r = measure(a, recipe, settings + ([] if m == "-" else [f"model.attention={m}"]), t, a.steps,
                            a.warmup)
                r["label"], r["map"] = label, m
                rows.append(r)
                if a.json_out:  # after every cell, so an interrupted session keeps what it measured
                    with open(a.json_out, "w") as f:
                        json.dump({"rows": rows}, f, indent=2)

    peaks = session_peaks(rows)
    print_main_table(rows, peaks, a)
    print_derived(rows, threads, maps)
    scaling = scaling_table(a, threads) if a.scaling else []
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"rows": rows, "peaks": peaks, "scaling": scaling}, f, indent=2)


if __name__ == "__main__":
    main()
