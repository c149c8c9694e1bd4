#!/usr/bin/env python3
"""A cost model (not a measurement) of data-parallel training at scale: for each
recipe, the bytes one gradient allreduce moves per step, the compute per step,
and the rank count at which the allreduce over a 10 or 100 Gbit/s link would
take as long as the compute (beyond it, communication dominates).

Model: R ranks of one core each share a fixed global batch, so compute per rank
and step is t1 / R (t1: one core's step time, measured); the allreduce of S =
4 P bytes (P gradient floats) costs, as Rabenseifner's reduce-scatter plus
allgather, 2 (R-1)/R S / bandwidth + 2 log2(R) alpha, without overlap with
the backward pass. Communication dominates from the smallest R with
t_comm(R) >= t1 / R; R is capped by the batch (at least one window per rank).

    python3 bench/dp_cost_model.py      (prints the markdown table of docs/performance.md)"""
import math

# recipe: (gradient floats P, global batch B, tokens per step, GFLOP per step,
#          one-thread tokens/s measured on this machine (docs/performance.md))
RECIPES = {
    "bench-r1": (106_772, 64, 64 * 64, 2.652, 94_273),
    "bench-r2": (814_868, 32, 32 * 128, 21.01, 14_398),
    "bench-r3": (2_203_412, 64, 64 * 64, 2.652, 85_150),
    "bench-r4": (268_308, 64, 64 * 64, 6.455, 48_478),
    # text-small: not benchmarked on a quiet machine; its step (10.88 GFLOP, from
    # `attnlab bench --recipe text-small`) at R2's one-thread 73.9 GFLOP/s, the most
    # similar shape (4 layers, d 128, T 128).
    "text-small": (859_136, 16, 16 * 128, 10.88, 16 * 128 / (10.88 / 73.9)),
}
LINKS = {"10 Gbit/s (Ethernet, alpha 30 us)": (10e9 / 8, 30e-6),
         "100 Gbit/s (InfiniBand, alpha 2 us)": (100e9 / 8, 2e-6)}


def t_comm(R, S, bw, alpha):
    return 2 * (R - 1) / R * S / bw + 2 * math.log2(R) * alpha


def crossover(t1, S, bw, alpha, B):
    for R in range(2, B + 1):
        if t_comm(R, S, bw, alpha) >= t1 / R:
            return str(R)
    return f"> {B} (batch)"


def main():
    print("| recipe | gradient floats | MB per allreduce | GFLOP per step | one-core step (ms) "
          + "".join(f"| R at which {k} dominates " for k in LINKS) + "|")
    print("|" + "---|" * (5 + len(LINKS)))
    for name, (P, B, tokens, gflop, tps) in RECIPES.items():
        S = 4 * P
        t1 = tokens / tps
        cells = [crossover(t1, S, bw, a, B) for bw, a in LINKS.values()]
        print(f"| {name} | {P:,} | {S / 1e6:.2f} | {gflop:.2f} | {1e3 * t1:.1f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
