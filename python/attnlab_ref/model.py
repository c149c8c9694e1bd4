"""Float64 PyTorch reference of the attnlab models, written from docs/models.md and
docs/checkpoint-format.md (not from the C++ code); parameters load from checkpoints by name."""

import json
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .io import CheckpointError, read_json_metadata, read_safetensors

POSITIONAL = ("learned", "sinusoidal", "rope", "alibi", "none")
FFN_ACTS = ("gelu", "relu", "swiglu")
NORMS = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post")
CIS_MAPS = ("qkv", "proj", "fc", "ffn_proj")
ARCHS = ("transformer", "cisformer", "lstm", "mlp")

QUADRATIC_EPS = 1e-6  # eps in the quadratic map's denominator
NORM_EPS = 1e-5       # LayerNorm / RMSNorm
DTYPE = torch.float64


# ----------------------------------------------------------------------------- config

@dataclass(frozen=True)
class ModelConfig:
    arch: str            # transformer | cisformer | lstm | mlp
    vocab: int           # V
    dim: int             # C
    layers: int          # L
    heads: int           # H; head size hs = C / H
    context: int         # largest window length T the model was built for
    ffn_mult: int        # F = ffn_mult * C
    ffn_act: str         # gelu (tanh form) | relu | swiglu
    norm: str            # layernorm | rmsnorm
    norm_position: str   # pre | post
    pos: str             # learned | sinusoidal | rope | alibi | none
    attention: tuple     # one map name per layer
    cis_maps: tuple      # position-specific maps (cisformer only)
    cis_rank: int = 0    # cisformer: 0 = full W(t) per position; r > 0: W(t) = W + U(t) V(t), rank r
    window: int = 0      # mlp: tokens seen (0 = context)
    hidden: int = 0      # mlp: hidden width (0 = 4 * dim)

    @property
    def head_size(self):
        return self.dim // self.heads

    @property
    def ffn_dim(self):
        return self.ffn_mult * self.dim

    @staticmethod
    def from_json(obj):
        """Builds and validates a config from the checkpoint's `model` JSON (dict or string).
        Unknown keys are rejected: a key the reference does not know may change the math."""
        if isinstance(obj, str):
            obj = json.loads(obj)
        arch = obj.get("arch")
        if arch not in ARCHS:
            raise ValueError(f"model.arch = {arch!r}; valid: {list(ARCHS)}")
        required = ["arch", "vocab", "dim", "layers", "heads", "context", "ffn_mult", "ffn_act",
                    "norm", "norm_position", "pos", "attention"]
        # window, hidden: sizes of the mlp architecture (0 = its defaults).
        # cis_rank: the low-rank cisformer's rank (0, full per-position weights, if absent).
        optional = ["cis_maps", "cis_rank", "window", "hidden"]
        missing = [k for k in required if k not in obj]
        if arch == "cisformer" and "cis_maps" not in obj:
            missing.append("cis_maps")
        if missing:
            raise ValueError(f"model config lacks {missing}")
        unknown = sorted(set(obj) - set(required) - set(optional))
        if unknown:
            raise ValueError(f"model config has keys the reference does not know: {unknown}; "
                             f"known: {required + optional}")

        def positive_int(key):
            v = obj[key]
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if type(v) is not int or v <= 0:
                raise ValueError(f"model.{key} = {obj[key]!r}; must be a positive integer")
            return v

        def choice(key, valid):
            if obj[key] not in valid:
                raise ValueError(f"model.{key} = {obj[key]!r}; valid: {list(valid)}")
            return obj[key]

        def names(key, valid, length=None):
            v = obj.get(key, [])
            if (not isinstance(v, list) or any(n not in valid for n in v)
                    or (length is not None and len(v) != length)):
                count = f"{length} names" if length is not None else "names"
                raise ValueError(f"model.{key} = {v!r}; must be a list of {count} from {list(valid)}")
            return tuple(v)

        layers = positive_int("layers")
        cfg = ModelConfig(
            arch=arch, vocab=positive_int("vocab"), dim=positive_int("dim"), layers=layers,
            heads=positive_int("heads"), context=positive_int("context"),
            ffn_mult=positive_int("ffn_mult"), ffn_act=choice("ffn_act", FFN_ACTS),
            norm=choice("norm", NORMS), norm_position=choice("norm_position", NORM_POSITIONS),
            pos=choice("pos", POSITIONAL),
            attention=names("attention", ATTENTION_MAP_DEFS, None if arch in ("lstm", "mlp") else layers),
            cis_maps=names("cis_maps", CIS_MAPS), cis_rank=int(obj.get("cis_rank", 0)),
            window=int(obj.get("window", 0)), hidden=int(obj.get("hidden", 0)))
        if arch in ("lstm", "mlp"):
            if not 0 <= cfg.window <= cfg.context or cfg.hidden < 0:
                raise ValueError(f"model.window = {cfg.window} must lie in 0..context, hidden >= 0")
            return cfg
        if cfg.cis_rank < 0 or (cfg.cis_rank and arch != "cisformer"):
            raise ValueError(f"model.cis_rank = {cfg.cis_rank}; must be >= 0, and 0 unless arch = cisformer")
        if cfg.dim % cfg.heads:
            raise ValueError(f"model.dim = {cfg.dim} is not divisible by model.heads = {cfg.heads}")
        if cfg.pos == "rope" and cfg.head_size % 2:
            raise ValueError(f"pos = rope needs an even head size, got {cfg.head_size}")
        return cfg

    def is_cis(self, map_name):
        """Whether the per-token linear map `map_name` has position-specific weights."""
        return self.arch == "cisformer" and map_name in self.cis_maps

    def linear(self, map_name, n_in, n_out):
        """The Linear of per-token map `map_name`: shared, position-specific, or shared plus
        a position-specific low-rank correction (cis_rank > 0)."""
        if not self.is_cis(map_name):
            return Linear(n_in, n_out)
        return Linear(n_in, n_out, self.context, self.cis_rank)


# ----------------------------------------------------------------------------- attention maps

def causal_mask(T):
    """(T, T) bool, True where key j may be seen by query i (j <= i)."""
    return torch.ones(T, T, dtype=torch.bool).tril()


def attention_mask(T, causal=True):
    """(T, T) bool of the keys each query sees: j <= i (causal), or every key (bidirectional)."""
    return causal_mask(T) if causal else torch.ones(T, T, dtype=torch.bool)


def _masked_softmax(a, mask):
    # exp(a - rowmax) over the visible keys; hidden keys get exactly 0 and no gradient.
    a = a.masked_fill(~mask, -math.inf)
    e = torch.exp(a - a.amax(dim=-1, keepdim=True).detach())
    return e / e.sum(dim=-1, keepdim=True)


def exp_normalised(f, signed=False):
    """w = c * softmax(f(s)) over the visible keys, c = sign(s) if `signed` else 1."""
    def weights(s, mask, window):
        p = _masked_softmax(f(s), mask)
        return torch.where(mask, torch.sign(s), torch.zeros((), dtype=s.dtype)) * p if signed else p
    return weights


def ratio(f, eps):
    """w = f(s) / (eps + sum of f(s) over the visible keys), f >= 0."""
    def weights(s, mask, window):
        fs = torch.where(mask, f(s), torch.zeros((), dtype=s.dtype))
        return fs / (eps + fs.sum(dim=-1, keepdim=True))
    return weights


def elementwise(w):
    """w_ij = w(s_ij, T) on the visible keys, 0 elsewhere (not normalised)."""
    def weights(s, mask, window):
        return torch.where(mask, w(s, window), torch.zeros((), dtype=s.dtype))
    return weights


# One entry per attention map (docs/models.md table): name -> weights(s, mask, window). The
# derivatives come from autograd; the engine's hand-written ones are checked against them.
# torch.sign(0) = 0, as the spec asks for cog.
ATTENTION_MAP_DEFS = {
    "softmax": exp_normalised(lambda s: s),
    "expressive": exp_normalised(lambda s: s * s),
    "quadratic": ratio(lambda s: s * s, QUADRATIC_EPS),
    "cog": exp_normalised(torch.abs, signed=True),
    "extensive": elementwise(lambda s, T: s * s / (1 + s * s)),
    "sigmoid": elementwise(lambda s, T: torch.sigmoid(s - math.log(T))),
}
ATTENTION_MAPS = tuple(ATTENTION_MAP_DEFS)  # the engine's built-in maps


def register_attention_map(name, weights):
    """Adds a map (e.g. elementwise(lambda s, T: torch.exp(-s * s))) under a new name."""
    if name in ATTENTION_MAP_DEFS:
        raise ValueError(f"attention map {name!r} is already defined")
    ATTENTION_MAP_DEFS[name] = weights


def attention_weights(s, mask, name, window):
    """Weights w (..., T, T) from scores s (..., T, T) for map `name` (docs/models.md table).
    mask: (T, T) bool of visible keys; window: the current window length T (sigmoid's -ln T)."""
    if name not in ATTENTION_MAP_DEFS:
        raise ValueError(f"unknown attention map {name!r}; valid: {list(ATTENTION_MAP_DEFS)}")
    return ATTENTION_MAP_DEFS[name](s, mask, window)


def alibi_slopes(H):
    """m_h = 2^(-8h/H), h = 1..H."""
    return torch.tensor([2.0 ** (-8.0 * h / H) for h in range(1, H + 1)], dtype=DTYPE)


def alibi_bias(H, T, causal=True):
    """(H, T, T) bias -m_h (i - j) (causal), or -m_h |i - j| (bidirectional: a key after the
    query is as far as one the same distance before it)."""
    i = torch.arange(T, dtype=DTYPE)
    dist = i[:, None] - i[None, :]
    return -alibi_slopes(H)[:, None, None] * (dist if causal else dist.abs())


def attention(q, k, v, name, causal=True, alibi=False):
    """Multi-head attention on q, k, v (B, H, T, hs) -> (out (B, H, T, hs), w (B, H, T, T)):
    s_ij = q_i . k_j / sqrt(hs) (+ ALiBi bias), w = map `name` row-wise over the keys query i
    sees (j <= i if causal, all j otherwise), out_i = sum_j w_ij v_j."""
    H, T, hs = q.shape[1], q.shape[2], q.shape[3]
    s = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, H, T, T)
    if alibi:
        s = s + alibi_bias(H, T, causal).to(s.dtype)
    w = attention_weights(s, attention_mask(T, causal), name, T)
    return w @ v, w


def rope(x):
    """Rotates pairs (x_i, x_{i+hs/2}) of x (B, H, T, hs) by the angle t * 10000^(-2i/hs):
    (a, b) -> (a cos - b sin, a sin + b cos)."""
    T, hs = x.shape[-2], x.shape[-1]
    half = hs // 2
    freq = 10000.0 ** (-2.0 * torch.arange(half, dtype=DTYPE) / hs)
    angle = torch.arange(T, dtype=DTYPE)[:, None] * freq[None, :]  # (T, hs/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def sinusoidal_table(T, C):
    """(T, C): PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(t / 10000^(2i/C))."""
    pe = torch.zeros(T, C, dtype=DTYPE)
    t = torch.arange(T, dtype=DTYPE)[:, None]
    two_i = torch.arange(0, C, 2, dtype=DTYPE)
    angle = t / 10000.0 ** (two_i / C)  # (T, ceil(C/2))
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : C // 2])
    return pe


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


# ----------------------------------------------------------------------------- layers

def _param(*shape):
    return nn.Parameter(torch.zeros(*shape, dtype=DTYPE))


class Table(nn.Module):
    """A lookup table / embedding, `weight` (rows, C)."""

    def __init__(self, rows, C):
        super().__init__()
        self.weight = _param(rows, C)


class Linear(nn.Module):
    """y = x W^T + b, W [out, in]; position-specific (cisformer) when `positions` is given:
    W [T, out, in], b [T, out], and position t of the window uses slice t. With a rank r > 0
    as well, W and b stay shared and position t uses W(t) = W + U(t) V(t), with
    pos_u [T, out, r] and pos_v [T, r, in]."""

    def __init__(self, n_in, n_out, positions=None, rank=0):
        super().__init__()
        self.positional = positions is not None and rank == 0
        lead = (positions,) if self.positional else ()
        self.weight = _param(*lead, n_out, n_in)
        self.bias = _param(*lead, n_out)
        self.rank = rank if positions is not None else 0
        if self.rank:
            self.pos_u = _param(positions, n_out, rank)
            self.pos_v = _param(positions, rank, n_in)

    def forward(self, x):  # x (B, T, in) -> (B, T, out)
        T = x.shape[1]
        if self.positional:
            return torch.einsum("bti,toi->bto", x, self.weight[:T]) + self.bias[:T]
        y = x @ self.weight.T + self.bias
        if self.rank:
            h = torch.einsum("bti,tri->btr", x, self.pos_v[:T])        # (B, T, r)
            y = y + torch.einsum("btr,tor->bto", h, self.pos_u[:T])
        return y


class Norm(nn.Module):
    """LayerNorm (gain and bias) or RMSNorm (gain only), eps 1e-5, biased variance."""

    def __init__(self, C, kind):
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(torch.ones(C, dtype=DTYPE))
        if kind == "layernorm":
            self.bias = _param(C)

    def forward(self, x):  # (B, T, C)
        if self.kind == "layernorm":
            mean = x.mean(dim=-1, keepdim=True)
            var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
            return (x - mean) / torch.sqrt(var + NORM_EPS) * self.weight + self.bias
        ms = (x * x).mean(dim=-1, keepdim=True)
        return x / torch.sqrt(ms + NORM_EPS) * self.weight


class Attention(nn.Module):
    def __init__(self, cfg, map_name):
        super().__init__()
        C, T = cfg.dim, cfg.context
        self.cfg, self.map_name = cfg, map_name
        self.qkv = cfg.linear("qkv", C, 3 * C)
        self.proj = cfg.linear("proj", C, C)

    def forward(self, x):  # (B, T, C)
        B, T, C = x.shape
        H, hs = self.cfg.heads, self.cfg.head_size
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (z.view(B, T, H, hs).transpose(1, 2) for z in (q, k, v))  # (B, H, T, hs)
        if self.cfg.pos == "rope":
            q, k = rope(q), rope(k)
        o, _ = attention(q, k, v, self.map_name, causal=True, alibi=self.cfg.pos == "alibi")
        o = o.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(o)


class FFN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, Fd = cfg.dim, cfg.ffn_dim
        self.act = cfg.ffn_act
        self.fc = cfg.linear("fc", C, 2 * Fd if self.act == "swiglu" else Fd)
        self.proj = cfg.linear("ffn_proj", Fd, C)

    def forward(self, x):  # (B, T, C)
        h = self.fc(x)
        if self.act == "gelu":
            h = gelu_tanh(h)
        elif self.act == "relu":
            h = torch.relu(h)
        else:  # swiglu: rows 0..F-1 of fc give a, rows F..2F-1 give g
            a, g = h.chunk(2, dim=-1)
            h = F.silu(a) * g
        return self.proj(h)


class Block(nn.Module):
    def __init__(self, cfg, map_name):
        super().__init__()
        self.pre = cfg.norm_position == "pre"
        # Registration order = the checkpoint's tensor order: norm1, attn, norm2, ffn.
        self.norm1 = Norm(cfg.dim, cfg.norm)
        self.attn = Attention(cfg, map_name)
        self.norm2 = Norm(cfg.dim, cfg.norm)
        self.ffn = FFN(cfg)

    def forward(self, x):
        if self.pre:
            x = x + self.attn(self.norm1(x))
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.ffn(x))


class Model(nn.Module):
    """Decoder-only transformer or cisformer; parameter names equal checkpoint tensor names.
    Built in float64; it computes in its parameters' dtype (tests cast a copy to float32 to
    imitate the engine's rounding)."""

    def __init__(self, cfg):
        super().__init__()
        if not isinstance(cfg, ModelConfig):
            cfg = ModelConfig.from_json(cfg)
        self.cfg = cfg
        self.tok_emb = Table(cfg.vocab, cfg.dim)
        if cfg.pos == "learned":
            self.pos_emb = Table(cfg.context, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg, name) for name in cfg.attention)
        self.norm_f = Norm(cfg.dim, cfg.norm)
        self.head = Linear(cfg.dim, cfg.vocab)

    def forward(self, inputs):
        """inputs (B, T) token ids, T <= context -> logits (B, T, V)."""
        inputs = torch.as_tensor(inputs, dtype=torch.long)
        B, T = inputs.shape
        cfg = self.cfg
        if not 1 <= T <= cfg.context:
            raise ValueError(f"window length {T} outside 1..context={cfg.context}")
        if inputs.min() < 0 or inputs.max() >= cfg.vocab:
            raise ValueError(f"token ids must lie in 0..{cfg.vocab - 1}")
        x = self.tok_emb.weight[inputs]  # (B, T, C)
        if cfg.pos == "learned":
            x = x + self.pos_emb.weight[:T]
        elif cfg.pos == "sinusoidal":
            x = x + sinusoidal_table(T, cfg.dim).to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm_f(x))

    def param_shapes(self):
        """name -> shape, in checkpoint order."""
        return {name: tuple(p.shape) for name, p in self.named_parameters()}

    def load_params(self, tensors, source="checkpoint"):
        """Copies name -> array into the parameters (as float64); every parameter must be
        present with its shape, and no other tensor may be."""
        shapes = self.param_shapes()
        missing = [n for n in shapes if n not in tensors]
        extra = [n for n in tensors if n not in shapes]
        wrong = [f"{n}: file {tuple(tensors[n].shape)}, model {shapes[n]}"
                 for n in shapes if n in tensors and tuple(tensors[n].shape) != shapes[n]]
        problems = []
        if missing:
            problems.append(f"missing tensors {missing}")
        if extra:
            problems.append(f"unexpected tensors {extra}")
        if wrong:
            problems.append(f"wrong shapes {wrong}")
        if problems:
            raise CheckpointError(f"{source}: does not match the model ({'; '.join(problems)})")
        with torch.no_grad():
            for name, p in self.named_parameters():
                value = torch.as_tensor(tensors[name])
                if not value.is_floating_point():
                    raise CheckpointError(f"{source}: tensor {name!r} has dtype {value.dtype}, expected a float")
                p.copy_(value.to(DTYPE))


class LSTMLayer(nn.Module):
    """One LSTM layer, gates (i, f, g, o) stacked in the rows of weight_ih, weight_hh, bias."""

    def __init__(self, C):
        super().__init__()
        self.weight_ih = _param(4 * C, C)
        self.weight_hh = _param(4 * C, C)
        self.bias = _param(4 * C)

    def forward(self, x):  # x (B, T, C) -> h (B, T, C); h = c = 0 before the window
        B, T, C = x.shape
        pre = x @ self.weight_ih.T + self.bias  # the input part of every step at once
        h = x.new_zeros(B, C)
        c = x.new_zeros(B, C)
        out = []
        for t in range(T):
            a = pre[:, t] + h @ self.weight_hh.T
            i, f, g, o = a[:, :C], a[:, C:2 * C], a[:, 2 * C:3 * C], a[:, 3 * C:]
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)


class RecurrentBase(nn.Module):
    """Shared input checks and checkpoint loading of the LSTM and the MLP."""

    def check_inputs(self, inputs):
        inputs = torch.as_tensor(inputs, dtype=torch.long)
        T = inputs.shape[1]
        if not 1 <= T <= self.cfg.context:
            raise ValueError(f"window length {T} outside 1..context={self.cfg.context}")
        if inputs.min() < 0 or inputs.max() >= self.cfg.vocab:
            raise ValueError(f"token ids must lie in 0..{self.cfg.vocab - 1}")
        return inputs

    param_shapes = None  # set below from Model
    load_params = None


class LSTMModel(RecurrentBase):
    """Embedding -> L LSTM layers of width C -> linear head."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = Table(cfg.vocab, cfg.dim)
        self.lstm = nn.ModuleList(LSTMLayer(cfg.dim) for _ in range(cfg.layers))
        self.head = Linear(cfg.dim, cfg.vocab)

    def forward(self, inputs):
        x = self.tok_emb.weight[self.check_inputs(inputs)]
        for layer in self.lstm:
            x = layer(x)
        return self.head(x)


class MLPModel(RecurrentBase):
    """Concatenated embeddings of the last W tokens -> L GELU layers -> linear head."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.W = cfg.window or cfg.context
        F = cfg.hidden or 4 * cfg.dim
        self.tok_emb = Table(cfg.vocab, cfg.dim)
        widths = [self.W * cfg.dim] + [F] * cfg.layers
        self.mlp = nn.ModuleList(Linear(widths[i], widths[i + 1]) for i in range(cfg.layers))
        self.head = Linear(F, cfg.vocab)

    def forward(self, inputs):
        inputs = self.check_inputs(inputs)
        B, T = inputs.shape
        e = self.tok_emb.weight[inputs]  # (B, T, C)
        padded = torch.cat([e.new_zeros(B, self.W - 1, e.shape[2]), e], dim=1)
        z = torch.stack([padded[:, t:t + self.W].reshape(B, -1) for t in range(T)], dim=1)
        for layer in self.mlp:
            z = gelu_tanh(layer(z))
        return self.head(z)


RecurrentBase.param_shapes = Model.param_shapes
RecurrentBase.load_params = Model.load_params


def build_model(cfg):
    """The reference model for a config (ModelConfig, dict or JSON string)."""
    if not isinstance(cfg, ModelConfig):
        cfg = ModelConfig.from_json(cfg)
    if cfg.arch == "lstm":
        return LSTMModel(cfg)
    if cfg.arch == "mlp":
        return MLPModel(cfg)
    return Model(cfg)


@torch.no_grad()
def init_params(model, seed=0, std=0.02):
    """docs/models.md initialisation: weights N(0, std), residual output projections
    (attn.proj, ffn.proj) N(0, std / sqrt(2L)), biases 0, norm gains 1."""
    gen = torch.Generator().manual_seed(seed)
    resid_std = std / math.sqrt(2 * model.cfg.layers)
    for name, p in model.named_parameters():
        if ".norm" in "." + name:
            p.fill_(1.0 if name.endswith("weight") else 0.0)
        elif name.endswith(("bias", ".pos_u")):  # U(t) = 0: the low-rank cisformer starts shared
            p.zero_()
        else:
            scale = resid_std if name.endswith((".attn.proj.weight", ".ffn.proj.weight")) else std
            p.copy_(torch.randn(p.shape, generator=gen, dtype=DTYPE) * scale)


def masked_cross_entropy(logits, targets, counted):
    """Mean cross-entropy over positions whose `counted` flag is nonzero: sum / number
    counted; 0 (with zero gradients) if none is counted. logits (B, T, V); targets,
    counted (B, T). Targets at uncounted positions are ignored."""
    mask = torch.as_tensor(counted) != 0
    targets = torch.as_tensor(targets, dtype=torch.long)
    n = int(mask.sum())
    if n == 0:
        return logits.sum() * 0.0
    picked = targets[mask]
    V = logits.shape[-1]
    if picked.min() < 0 or picked.max() >= V:
        raise ValueError(f"counted targets must lie in 0..{V - 1}")
    logp = torch.log_softmax(logits[mask], dim=-1)  # (n, V)
    return -logp.gather(1, picked[:, None]).sum() / n


def load_model(path, kinds=("params",)):
    """Builds the model from a checkpoint's `model` metadata and loads its parameters.
    Returns (model, metadata)."""
    tensors, metadata = read_safetensors(path)
    kind = metadata.get("kind")
    if kinds is not None and kind not in kinds:
        raise CheckpointError(f"{path}: metadata kind is {kind!r}, expected one of {list(kinds)}")
    model = build_model(read_json_metadata(metadata, "model", path))
    model.load_params(tensors, source=str(path))
    return model, metadata
