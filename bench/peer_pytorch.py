#!/usr/bin/python3
"""The PyTorch peer of `attnlab bench`: the same model, data shapes and optimizer written the
way a PyTorch user would, timed the same way, printing the same figures (tokens/s, steps/s,
model GFLOP/s). The default `plain` model is float32 nn modules (nn.Embedding, nn.LayerNorm,
nn.Linear, F.gelu, the attention map as a tensor expression, F.cross_entropy, nn.LSTM for the
LSTM) with torch.optim.AdamW; `--model reference` is the float64 reference model of
python/attnlab_ref cast to float32. The thread counts of torch (torch.set_num_threads), OpenMP
and OpenBLAS (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, set before torch is imported) follow
--threads; OpenBLAS's can be set apart with --blas-threads.

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
os.environ["MKL_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]



def tune_malloc():
    """glibc's malloc as a PyTorch user tunes it for CPU training: blocks up to 32 MiB from the
    heap instead of fresh mmap()s, and freed memory kept instead of trimmed. Measured on this
    machine (docs/performance.md), R1 with 1 thread: 66k tokens/s against 20-28k with glibc's
    defaults, where every step maps, faults in and unmaps its activations again. Must run
    before torch allocates; `--malloc default` leaves glibc as it is."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
    if not (libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)):
        sys.exit("error: mallopt refused the peer's malloc settings")


MALLOC = early_option(sys.argv, "--malloc", "tuned")
if MALLOC == "tuned":
    tune_malloc()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from attnlab_ref import ModelConfig, build_model, init_params, masked_cross_entropy  # noqa: E402
from attnlab_ref.model import NORM_EPS, QUADRATIC_EPS, alibi_bias, sinusoidal_table  # noqa: E402
from attnlab_ref.model import attention_weights as ref_attention_weights  # noqa: E402
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
    """The vocabulary of a task configuration (src/tasks/*.h); --vocab overrides it."""
    name = task["name"]
    if name == "iarc":
        return task["n"] + 4  # N data tokens and the four control tokens I, A, R, C
    if name == "ladder":
        return task["n"]
    if name == "multitask":
        return task["n"] + len(task["levels"])  # N values and one task token per level
    if name == "text":
        return 256  # bytes
    if name == "fmnist":
        return 10  # classes
    sys.exit(f"error: the peer does not know the vocabulary of task {name!r}; pass --vocab "
             "(the `vocab` of `attnlab bench --json`)")


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
    if arch == "uvit":  # T tokens per image: time, class and (T - 2) patches of p^2 pixels
        F, pd, nout = m["ffn_mult"] * C, m["patch"] ** 2, (L - 1) // 2
        forward = (2 * B * (T - 2) * pd * C + L * 2 * N * (C * 3 * C + C * C + 2 * C * F)
                   + nout * 2 * N * 2 * C * C + 2 * N * C * pd)
        return 3 * forward + 3 * L * 2 * (2 * B * T * T * C)  # bidirectional: all T^2 pairs
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


# ----------------------------------------------------------------------------- the plain model
# A float32 transformer as a PyTorch user writes it: nn.Embedding, nn.LayerNorm, nn.Linear,
# F.gelu, the attention map as a tensor expression over the (B, H, T, T) scores with a causal
# mask made once, F.cross_entropy. Same shapes, parameters and FLOPs as attnlab's model.

GELU_FORM = "none"  # set by --gelu


def attention_map(s, mask, name, T):
    """Weights (B, H, T, T) from scores s for map `name` (MODELS.md); mask True where j <= i."""
    if name == "softmax":
        return torch.softmax(s.masked_fill(~mask, -math.inf), dim=-1)
    if name == "expressive":
        return torch.softmax((s * s).masked_fill(~mask, -math.inf), dim=-1)
    if name == "cog":
        return torch.sign(s) * torch.softmax(s.abs().masked_fill(~mask, -math.inf), dim=-1)
    if name == "quadratic":
        sq = (s * s).masked_fill(~mask, 0.0)
        return sq / (QUADRATIC_EPS + sq.sum(dim=-1, keepdim=True))
    if name == "extensive":
        sq = s * s
        return (sq / (1 + sq)).masked_fill(~mask, 0.0)
    if name == "sigmoid":
        return torch.sigmoid(s - math.log(T)).masked_fill(~mask, 0.0)
    return ref_attention_weights(s, mask, name, T)  # a map added later: the reference's expression


class RMSNorm(nn.Module):  # torch 1.13 has no nn.RMSNorm
    def __init__(self, C):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + NORM_EPS) * self.weight


class PosLinear(nn.Module):
    """The cisformer's position-specific linear map: weight (T, out, in), bias (T, out)."""

    def __init__(self, n_in, n_out, T):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(T, n_out, n_in) * 0.02)
        self.bias = nn.Parameter(torch.zeros(T, n_out))

    def forward(self, x):  # (B, T, in)
        T = x.shape[1]
        return torch.einsum("bti,toi->bto", x, self.weight[:T]) + self.bias[:T]


class PlainBlock(nn.Module):
    def __init__(self, m, T, map_name):
        super().__init__()
        C, H = m["dim"], m["heads"]
        self.H, self.map_name, self.pos, self.act = H, map_name, m["pos"], m["ffn_act"]
        self.pre = m["norm_position"] == "pre"
        cis = m["cis_maps"] if m["arch"] == "cisformer" else []

        def linear(name, n_in, n_out):
            return PosLinear(n_in, n_out, T) if name in cis else nn.Linear(n_in, n_out)

        def norm():
            return nn.LayerNorm(C, eps=NORM_EPS) if m["norm"] == "layernorm" else RMSNorm(C)

        F_ = m["ffn_mult"] * C
        self.norm1, self.norm2 = norm(), norm()
        self.qkv, self.proj = linear("qkv", C, 3 * C), linear("proj", C, C)
        self.fc = linear("fc", C, 2 * F_ if self.act == "swiglu" else F_)
        self.ffn_proj = linear("ffn_proj", F_, C)

    def attn(self, x, mask, rope_cs, alibi):
        B, T, C = x.shape
        hs = C // self.H
        q, k, v = self.qkv(x).view(B, T, 3, self.H, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, hs)
        if rope_cs is not None:
            q, k = rotate(q, *rope_cs), rotate(k, *rope_cs)
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, H, T, T)
        if alibi is not None:
            s = s + alibi
        w = attention_map(s, mask, self.map_name, T)
        return self.proj((w @ v).transpose(1, 2).reshape(B, T, C))

    def ffn(self, x):
        h = self.fc(x)
        if self.act == "gelu":
            # PyTorch's default (erf) form: Debian's torch 1.13 computes approximate="tanh",
            # attnlab's form, about 25x slower on this machine, which would flatter attnlab.
            h = F.gelu(h, approximate=GELU_FORM)
        elif self.act == "relu":
            h = F.relu(h)
        else:
            a, g = h.chunk(2, dim=-1)
            h = F.silu(a) * g
        return self.ffn_proj(h)

    def forward(self, x, mask, rope_cs, alibi):
        if self.pre:
            x = x + self.attn(self.norm1(x), mask, rope_cs, alibi)
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.attn(x, mask, rope_cs, alibi))
        return self.norm2(x + self.ffn(x))


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class PlainTransformer(nn.Module):
    def __init__(self, m, T, vocab, maps):
        super().__init__()
        C, H = m["dim"], m["heads"]
        self.pos = m["pos"]
        self.tok_emb = nn.Embedding(vocab, C)
        if self.pos == "learned":
            self.pos_emb = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(PlainBlock(m, T, name) for name in maps)
        self.norm_f = nn.LayerNorm(C, eps=NORM_EPS) if m["norm"] == "layernorm" else RMSNorm(C)
        self.head = nn.Linear(C, vocab)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).tril())
        self.register_buffer("sinusoid", sinusoidal_table(T, C).float())
        angle = torch.arange(T)[:, None] * 10000.0 ** (-2.0 * torch.arange(C // H // 2) / (C // H))
        self.register_buffer("rope_cos", torch.cos(angle).float())
        self.register_buffer("rope_sin", torch.sin(angle).float())
        self.register_buffer("alibi", alibi_bias(H, T).float())

    def forward(self, inputs):
        T = inputs.shape[1]
        x = self.tok_emb(inputs)
        if self.pos == "learned":
            x = x + self.pos_emb.weight[:T]
        elif self.pos == "sinusoidal":
            x = x + self.sinusoid[:T]
        mask = self.mask[:T, :T]
        rope_cs = (self.rope_cos[:T], self.rope_sin[:T]) if self.pos == "rope" else None
        alibi = self.alibi[:, :T, :T] if self.pos == "alibi" else None
        for block in self.blocks:
            x = block(x, mask, rope_cs, alibi)
        return self.head(self.norm_f(x))


# ----------------------------------------------------------------------------- the plain U-ViT
# The U-ViT of src/model/uvit.h as a PyTorch user writes it: tokens [time, class, patches] plus
# learned positions, (L-1)/2 in-blocks, a mid-block and (L-1)/2 out-blocks whose long skip is
# nn.Linear(2C, C) over [x, skip]; bidirectional attention (torch.softmax over all T keys);
# the head on every token (as attnlab, so the FLOPs agree), its patch tokens back to pixels.

FMNIST_SIDE = 28  # Fashion-MNIST images are 28 x 28


class UViTBlock(nn.Module):
    def __init__(self, m, map_name, skip):
        super().__init__()
        C = m["dim"]
        self.H, self.map_name = m["heads"], map_name
        self.skip = nn.Linear(2 * C, C) if skip else None
        self.norm1, self.norm2 = nn.LayerNorm(C, eps=NORM_EPS), nn.LayerNorm(C, eps=NORM_EPS)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.ffn_proj = nn.Linear(C, m["ffn_mult"] * C), nn.Linear(m["ffn_mult"] * C, C)

    def attn(self, x):
        B, T, C = x.shape
        hs = C // self.H
        q, k, v = self.qkv(x).view(B, T, 3, self.H, hs).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, hs)
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        if self.map_name == "softmax":
            w = torch.softmax(s, dim=-1)
        else:
            w = attention_map(s, torch.ones(T, T, dtype=torch.bool), self.map_name, T)
        return self.proj((w @ v).transpose(1, 2).reshape(B, T, C))

    def forward(self, x, skip=None):
        if skip is not None:
            x = self.skip(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.ffn_proj(F.gelu(self.fc(self.norm2(x)), approximate=GELU_FORM))


class PlainUViT(nn.Module):
    def __init__(self, m, classes, maps):
        super().__init__()
        C, p, S = m["dim"], m["patch"], FMNIST_SIDE
        self.S, self.p, self.nin = S, p, (m["layers"] - 1) // 2
        T = 2 + (S // p) ** 2
        self.patch_embed = nn.Linear(p * p, C)
        self.class_emb = nn.Embedding(classes + 1, C)  # index `classes`: no class
        self.pos_emb = nn.Parameter(torch.randn(T, C) * 0.02)
        self.blocks = nn.ModuleList(UViTBlock(m, name, skip=l > self.nin) for l, name in enumerate(maps))
        self.norm_f = nn.LayerNorm(C, eps=NORM_EPS)
        self.head = nn.Linear(C, p * p)
        self.register_buffer("freq", torch.exp(-math.log(10000.0) * torch.arange(C // 2) / (C // 2)))

    def forward(self, x, t, y):  # x (B, S*S), t (B,) levels, y (B,) classes -> (B, S*S)
        B, S, p = x.shape[0], self.S, self.p
        g = S // p
        patches = x.view(B, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(B, g * g, p * p)
        arg = t[:, None].float() * self.freq
        time = torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)
        h = torch.cat([time[:, None], self.class_emb(y)[:, None], self.patch_embed(patches)], dim=1) + self.pos_emb
        skips = []
        for l, block in enumerate(self.blocks):
            h = block(h, skips.pop() if l > self.nin else None)
            if l < self.nin:
                skips.append(h)
        out = self.head(self.norm_f(h))[:, 2:]
        return out.reshape(B, g, g, p, p).permute(0, 1, 3, 2, 4).reshape(B, S * S)


def uvit_batches(B, classes, levels=1000, n=4):
    """Random noisy images in [-1, 1], levels, classes (some dropped) and noise targets."""
    gen = torch.Generator().manual_seed(1)
    S2 = FMNIST_SIDE ** 2
    return [(torch.rand(B, S2, generator=gen) * 2 - 1, torch.randint(levels, (B,), generator=gen),
             torch.randint(classes + 1, (B,), generator=gen), torch.randn(B, S2, generator=gen))
            for _ in range(n)]


def time_uvit_sampling(model, classes, n, steps, per_batch, guidance=2.0):
    """Seconds to draw n images with `steps` DDIM steps (eta 0) and classifier-free guidance,
    as `attnlab sample`: per_batch images a batch, cond and uncond rows in one forward."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0).float()
    ts = [int(round(i * 999 / (steps - 1))) for i in range(steps)][::-1] if steps > 1 else [999]
    S2 = FMNIST_SIDE ** 2
    t0 = time.perf_counter()
    with torch.no_grad():
        for i0 in range(0, n, per_batch):
            b = min(per_batch, n - i0)
            y = torch.arange(i0, i0 + b) % classes
            x = torch.randn(b, S2)
            for j, t in enumerate(ts):
                eps2 = model(torch.cat([x, x]), torch.full((2 * b,), t), torch.cat([y, torch.full((b,), classes)]))
                eps = eps2[b:] + guidance * (eps2[:b] - eps2[b:])
                a, a_next = abar[t], abar[ts[j + 1]] if j + 1 < len(ts) else torch.tensor(1.0)
                x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return time.perf_counter() - t0


def layer_maps(m):
    attention = m["attention"]
    if attention == "cogformer":
        return ["softmax"] + ["cog"] * (m["layers"] - 2) + ["softmax"]
    return attention.split(",") if "," in attention else [attention] * m["layers"]


def build(cfg, vocab, kind):
    """The peer model: `plain` (float32 modules, above) or `reference` (attnlab_ref cast)."""
    m, T = cfg["model"], cfg["train"]["context"]
    if m["arch"] == "uvit":
        if kind != "plain":
            sys.exit("error: the U-ViT peer is the plain model only (--model plain)")
        return PlainUViT(m, vocab, layer_maps(m))
    if m["arch"] == "lstm":
        return LSTMPeer(vocab, m["dim"], m["layers"]).float()
    if m.get("cis_rank", 0) and m["arch"] == "cisformer":
        sys.exit("error: the peer has no low-rank position-specific maps (model.cis_rank > 0)")
    if kind == "plain" and m["arch"] in ("transformer", "cisformer"):
        return PlainTransformer(m, T, vocab, layer_maps(m))
    mc = ModelConfig.from_json({
        "arch": m["arch"], "vocab": vocab, "dim": m["dim"], "layers": m["layers"],
        "heads": m["heads"], "context": T, "ffn_mult": m["ffn_mult"], "ffn_act": m["ffn_act"],
        "norm": m["norm"], "norm_position": m["norm_position"], "pos": m["pos"],
        "attention": layer_maps(m), "cis_maps": m["cis_maps"], "window": m["window"],
        "hidden": m["hidden"]})
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
    ap.add_argument("--model", choices=["plain", "reference"], default="plain",
                    help="plain: float32 nn modules as a PyTorch user writes them (default); "
                         "reference: the float64 reference model of python/attnlab_ref cast to float32")
    ap.add_argument("--gelu", choices=["erf", "tanh"], default="erf",
                    help="the plain model's GELU: PyTorch's default erf form (default; the faster "
                         "one here) or the tanh form attnlab computes")
    ap.add_argument("--vocab", type=int, help="vocabulary size (default: from the task configuration)")
    ap.add_argument("--sample", type=int, default=0,
                    help="U-ViT: also time drawing this many images (as `attnlab sample`)")
    ap.add_argument("--sample-steps", type=int, default=50, help="DDIM steps of --sample (default 50)")
    ap.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                    help="glibc malloc: tuned for CPU training (heap up to 32 MiB, no trimming; "
                         "the default here) or glibc's defaults")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    if bool(a.recipe) == bool(a.config):
        sys.exit("error: give exactly one of --recipe NAME or --config FILE")
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        sys.exit("error: --threads and --steps must be >= 1, --warmup >= 0")

    torch.set_num_threads(a.threads)
    global GELU_FORM
    GELU_FORM = "none" if a.gelu == "erf" else "tanh"
    cfg = load_config(a.attnlab, a.recipe, a.config, a.set)
    tc, vocab = cfg["train"], a.vocab or task_vocab(cfg["task"])
    uvit = cfg["model"]["arch"] == "uvit"
    if uvit:  # the token count per image, as attnlab resolves it
        tc["context"] = 2 + (FMNIST_SIDE // cfg["model"]["patch"]) ** 2
    B, T = tc["batch"], tc["context"]
    torch.manual_seed(tc["seed"])
    model = build(cfg, vocab, a.model)

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
    if uvit:  # images, levels, classes and noise targets, as `attnlab bench` makes them
        batches = uvit_batches(B, vocab)

    step = 0

    def train_step():
        nonlocal step
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, schedule)
        opt.zero_grad(set_to_none=True)
        if uvit:
            x, t, y, eps = batches[step % len(batches)]
            loss = F.mse_loss(model(x, t, y), eps)
        elif a.model == "plain":  # uncounted targets are ignored
            inputs, targets, counted = batches[step % len(batches)]
            loss = F.cross_entropy(model(inputs).view(B * T, vocab), targets.masked_fill(~counted, -100).view(-1))
        else:
            inputs, targets, counted = batches[step % len(batches)]
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
    r = {"implementation": f"pytorch {torch.__version__}", "model": a.model, "threads": a.threads,
         "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
         "malloc": a.malloc,
         "params": sum(p.numel() for p in model.parameters()), "batch": B,
         "context": T, "steps": a.steps, "warmup": a.warmup, "tokens_per_s": B * T / step_s,
         "steps_per_s": 1 / step_s, "step_ms": 1e3 * step_s, "step_min_ms": 1e3 * times[0],
         "step_median_ms": 1e3 * times[len(times) // 2], "flops_per_step": flops,
         "gflops": flops / step_s / 1e9}
    if uvit:
        r["images_per_s"] = B / step_s
    if uvit and a.sample > 0:  # attnlab sample: 64 images a batch (a model built for 128 rows)
        r["sample_images"], r["sample_steps"] = a.sample, a.sample_steps
        r["sample_s"] = time_uvit_sampling(model.eval(), vocab, a.sample, a.sample_steps, 64)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"pytorch {torch.__version__} ({a.model} model, {r['params']} parameters): {cfg['model']['arch']}, "
              f"batch {B} x {T} tokens, {a.threads} threads (OpenBLAS {r['blas_threads']})")
        print(f"throughput  {r['tokens_per_s']:.0f} tokens/s, {r['steps_per_s']:.2f} steps/s  (mean of "
              f"{a.steps} steps after {a.warmup} warm-up; step {r['step_ms']:.2f} ms, fastest "
              f"{r['step_min_ms']:.2f} ms, median {r['step_median_ms']:.2f} ms)")
        if uvit:
            print(f"            {r['images_per_s']:.1f} images/s ({B} images of {T} tokens per step)")
        print(f"model       {flops / 1e9:.3f} GFLOP per step  ->  {r['gflops']:.1f} GFLOP/s")
        if "sample_s" in r:
            print(f"sampling    {a.sample} images, {a.sample_steps} DDIM steps with guidance: "
                  f"{r['sample_s']:.1f} s")


if __name__ == "__main__":
    main()
