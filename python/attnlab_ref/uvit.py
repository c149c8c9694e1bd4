"""Float64 PyTorch reference of the attnlab U-ViT (a diffusion noise predictor over grey images),
written from the U-ViT paper (Bao et al. 2023) and the layout in docs/checkpoint-format.md:
tokens [time, class, patches] + learned positions; (L-1)/2 in-blocks, a mid-block, (L-1)/2
out-blocks with long skips (concatenate [x, skip], linear back to width); final norm; linear
back to patches. Attention is bidirectional (no mask); the map is chosen per block."""

import json
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .model import ATTENTION_MAPS, DTYPE, Linear, Norm, Table, attention_weights, gelu_tanh

UVIT_KEYS = ("arch", "vocab", "dim", "layers", "heads", "context", "ffn_mult", "ffn_act", "norm",
             "norm_position", "pos", "attention", "cis_maps", "window", "hidden", "patch", "image")


@dataclass(frozen=True)
class UViTConfig:
    classes: int     # K; class index K means "no class" (label dropout)
    dim: int         # C (even: the time embedding is [cos, sin] halves)
    layers: int      # L, odd
    heads: int       # H
    ffn_mult: int    # F = ffn_mult * C
    patch: int       # p
    image: int       # S; the image is S x S grey
    attention: tuple  # one map per block: in-blocks, mid-block, out-blocks

    @property
    def tokens(self):
        return 2 + (self.image // self.patch) ** 2

    @staticmethod
    def from_json(obj):
        if isinstance(obj, str):
            obj = json.loads(obj)
        if obj.get("arch") != "uvit":
            raise ValueError(f"not a uvit config: arch = {obj.get('arch')!r}")
        unknown = sorted(set(obj) - set(UVIT_KEYS))
        if unknown:
            raise ValueError(f"uvit config has keys the reference does not know: {unknown}")
        if (obj["ffn_act"], obj["norm"], obj["norm_position"], obj["pos"]) != ("gelu", "layernorm", "pre", "learned"):
            raise ValueError("the uvit reference implements gelu, layernorm, pre-norm, learned positions only")
        cfg = UViTConfig(obj["vocab"], obj["dim"], obj["layers"], obj["heads"], obj["ffn_mult"],
                         obj["patch"], obj["image"], tuple(obj["attention"]))
        if cfg.layers % 2 != 1 or len(cfg.attention) != cfg.layers:
            raise ValueError(f"uvit needs an odd block count and one map per block: {obj}")
        if any(m not in ATTENTION_MAPS for m in cfg.attention):
            raise ValueError(f"unknown attention map in {cfg.attention}")
        if obj["context"] != cfg.tokens:
            raise ValueError(f"context {obj['context']} is not the token count {cfg.tokens}")
        return cfg


def time_embedding(t, C):
    """(B,) levels -> (B, C): [cos(t f_i), sin(t f_i)], f_i = 10000^(-i / (C/2)), i < C/2."""
    half = C // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=DTYPE) / half)
    arg = t.to(DTYPE)[:, None] * f[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


def patchify(x, p):
    """(B, S, S) -> (B, P, p*p): patch (r // p) g + c // p, element (r % p) p + c % p."""
    B, S, _ = x.shape
    g = S // p
    return x.reshape(B, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(B, g * g, p * p)


def unpatchify(x, p, S):
    B = x.shape[0]
    g = S // p
    return x.reshape(B, g, g, p, p).permute(0, 1, 3, 2, 4).reshape(B, S, S)


class Attention(nn.Module):
    def __init__(self, C, H, map_name):
        super().__init__()
        self.H, self.map_name = H, map_name
        self.qkv = Linear(C, 3 * C)
        self.proj = Linear(C, C)

    def forward(self, x):  # (B, T, C), every query sees every key
        B, T, C = x.shape
        H, hs = self.H, C // self.H
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (z.view(B, T, H, hs).transpose(1, 2) for z in (q, k, v))
        s = q @ k.transpose(-2, -1) / math.sqrt(hs)
        w = attention_weights(s, torch.ones(T, T, dtype=torch.bool), self.map_name, T)
        return self.proj((w @ v).transpose(1, 2).reshape(B, T, C))


class FFN(nn.Module):
    def __init__(self, C, Fd):
        super().__init__()
        self.fc = Linear(C, Fd)
        self.proj = Linear(Fd, C)

    def forward(self, x):
        return self.proj(gelu_tanh(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg, map_name, skip):
        super().__init__()
        C = cfg.dim
        # Registration order = the checkpoint's tensor order.
        if skip:
            self.skip = Linear(2 * C, C)
        self.norm1 = Norm(C, "layernorm")
        self.attn = Attention(C, cfg.heads, map_name)
        self.norm2 = Norm(C, "layernorm")
        self.ffn = FFN(C, cfg.ffn_mult * C)

    def forward(self, x, skip=None):
        if skip is not None:
            x = self.skip(torch.cat([x, skip], dim=-1))
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class UViT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if not isinstance(cfg, UViTConfig):
            cfg = UViTConfig.from_json(cfg)
        self.cfg = cfg
        C, nin = cfg.dim, (cfg.layers - 1) // 2
        self.patch_embed = Linear(cfg.patch ** 2, C)
        self.class_emb = Table(cfg.classes + 1, C)
        self.pos_emb = Table(cfg.tokens, C)
        self.blocks = nn.ModuleList(Block(cfg, m, skip=l > nin) for l, m in enumerate(cfg.attention))
        self.norm_f = Norm(C, "layernorm")
        self.head = Linear(C, cfg.patch ** 2)

    def forward(self, x, t, y):
        """x (B, S*S) noisy images, t (B,) levels, y (B,) classes (K = none) -> (B, S*S) noise."""
        cfg = self.cfg
        S, p, nin = cfg.image, cfg.patch, (cfg.layers - 1) // 2
        B = x.shape[0]
        patches = self.patch_embed(patchify(x.reshape(B, S, S), p))
        tokens = torch.cat([time_embedding(t, cfg.dim).to(x.dtype)[:, None, :],
                            self.class_emb.weight[y][:, None, :], patches], dim=1)
        h = tokens + self.pos_emb.weight
        skips = []
        for l, block in enumerate(self.blocks):
            if l < nin:
                h = block(h)
                skips.append(h)
            elif l == nin:
                h = block(h)
            else:
                h = block(h, skips.pop())
        out = self.head(self.norm_f(h))[:, 2:, :]
        return unpatchify(out, p, S).reshape(B, S * S)

    def param_shapes(self):
        return {name: tuple(p.shape) for name, p in self.named_parameters()}

    def load_params(self, tensors):
        shapes = self.param_shapes()
        if set(tensors) != set(shapes) or any(tuple(tensors[n].shape) != s for n, s in shapes.items()):
            raise ValueError(f"checkpoint tensors {sorted((n, tuple(v.shape)) for n, v in tensors.items())} "
                             f"do not match the model's {sorted(shapes.items())}")
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.as_tensor(tensors[name]).to(p.dtype))


def mse_and_grads(model, x, t, y, target):
    """Forward + backward of mean((model(x, t, y) - target)^2). Returns (pred, loss, grads)."""
    model.zero_grad(set_to_none=True)
    pred = model(x, t, y)
    loss = ((pred - target) ** 2).mean()
    loss.backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
             for n, p in model.named_parameters()}
    return pred.detach(), loss.detach(), grads
