"""Tests of the PyTorch reference itself: attention maps against the closed-form backward
rules of docs/models.md, positional encodings and norms against hand values, parameter names
against docs/checkpoint-format.md, the optimizer contract, and end-to-end training runs."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

import fake_engine
from attnlab_ref import (ATTENTION_MAPS, POSITIONAL, CheckpointError, Model, ModelConfig,
                         attention_weights, init_params, load_model, masked_cross_entropy,
                         write_safetensors)
from attnlab_ref.model import QUADRATIC_EPS, alibi_slopes, causal_mask, gelu_tanh, rope, sinusoidal_table
from attnlab_ref.optim import AdamW, check_optim, clip_gradients, learning_rate, train_on_batch

model_json, optim_json = fake_engine.model_json, fake_engine.optim_json


def _random_model(cfg, seed=0):
    model = Model(cfg)
    fake_engine._nontrivial_params(model, seed)
    return model


def _batch(cfg, B=2, T=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    T = T or cfg["context"]
    return (torch.randint(0, cfg["vocab"], (B, T), generator=gen),
            torch.randint(0, cfg["vocab"], (B, T), generator=gen),
            torch.ones(B, T, dtype=torch.uint8))


# ----------------------------------------------------------------------------- attention maps

def _closed_form_ds(name, s, w, g, mask, T):
    """dL/ds from docs/models.md, with g = dL/dw, for the visible keys (0 elsewhere)."""
    g = torch.where(mask, g, torch.zeros(()))
    if name in ("softmax", "expressive", "cog"):
        f_prime = {"softmax": torch.ones_like(s), "expressive": 2 * s, "cog": torch.sign(s)}[name]
        c = torch.sign(s) if name == "cog" else torch.ones_like(s)
        p = w / c if name != "cog" else w.abs()  # p = w / c (|w| for cog; c = 0 only if s = 0)
        u = c * g
        ds = f_prime * p * (u - (p * u).sum(-1, keepdim=True))
    elif name == "quadratic":
        Z = QUADRATIC_EPS + torch.where(mask, s * s, torch.zeros(())).sum(-1, keepdim=True)
        ds = 2 * s / Z * (g - (w * g).sum(-1, keepdim=True))
    elif name == "extensive":
        ds = g * 2 * s / (1 + s * s) ** 2
    else:
        ds = g * w * (1 - w)
    return torch.where(mask, ds, torch.zeros(()))


@pytest.mark.parametrize("name", ATTENTION_MAPS)
def test_map_backward_matches_spec(name):
    torch.manual_seed(0)
    T = 7
    s = (1.5 * torch.randn(3, T, T, dtype=torch.float64)).requires_grad_()
    g = torch.randn(3, T, T, dtype=torch.float64)
    mask = causal_mask(T)
    w = attention_weights(s, mask, name, T)
    (w * g).sum().backward()
    expected = _closed_form_ds(name, s.detach(), w.detach(), g, mask, T)
    assert torch.allclose(s.grad, expected, rtol=1e-10, atol=1e-12)
    assert (s.grad[:, ~mask] == 0).all() and (w[:, ~mask] == 0).all()


@pytest.mark.parametrize("name", ATTENTION_MAPS)
def test_map_values(name):
    T = 5
    mask = causal_mask(T)
    s = torch.randn(2, T, T, dtype=torch.float64)
    w = attention_weights(s, mask, name, T)
    if name in ("softmax", "expressive"):
        assert torch.allclose(w.sum(-1), torch.ones(2, T, dtype=torch.float64))
        assert (w[:, mask] > 0).all()
    if name == "cog":
        assert torch.allclose(w.abs().sum(-1), torch.ones(2, T, dtype=torch.float64))
        assert torch.equal(torch.sign(w[:, mask]), torch.sign(s[:, mask]))
    if name == "quadratic":
        ssq = (s * s * mask).sum(-1)
        assert torch.allclose(w.sum(-1), ssq / (QUADRATIC_EPS + ssq))
    if name in ("extensive", "sigmoid"):
        assert (w[:, mask] >= 0).all() and (w[:, mask] < 1).all()
    # Huge finite scores do not overflow: every exp has its row maximum subtracted.
    big = attention_weights(torch.full((T, T), 1e4, dtype=torch.float64) * torch.randn(T, T), mask, name, T)
    assert torch.isfinite(big).all()


def test_map_special_points():
    T = 4
    mask = causal_mask(T)
    zeros = torch.zeros(T, T, dtype=torch.float64)
    assert (attention_weights(zeros, mask, "cog", T) == 0).all()           # sign(0) = 0
    assert (attention_weights(zeros, mask, "extensive", T) == 0).all()
    assert (attention_weights(zeros, mask, "quadratic", T) == 0).all()     # 0 / eps
    w = attention_weights(torch.full((T, T), math.log(T), dtype=torch.float64), mask, "sigmoid", T)
    assert torch.allclose(w[mask], torch.full_like(w[mask], 0.5))          # bias -ln T
    s = torch.tensor([[2.0]], dtype=torch.float64)
    assert float(attention_weights(s, causal_mask(1), "extensive", 1)) == pytest.approx(4 / 5)


# ----------------------------------------------------------------------------- positions, norms

def test_alibi_slopes():
    assert alibi_slopes(4).tolist() == [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]
    assert alibi_slopes(8).tolist() == [2.0 ** -h for h in range(1, 9)]


def test_sinusoidal_table():
    pe = sinusoidal_table(3, 4)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert pe[2, 0] == pytest.approx(math.sin(2)) and pe[2, 1] == pytest.approx(math.cos(2))
    assert pe[2, 2] == pytest.approx(math.sin(2 / 100)) and pe[2, 3] == pytest.approx(math.cos(2 / 100))


def test_rope():
    # Pair (x_0, x_1) of a head of size 2 at position t turns by angle t (counter-clockwise).
    x = torch.tensor([1.0, 0.0], dtype=torch.float64).expand(1, 1, 3, 2)
    out = rope(x)[0, 0]
    assert torch.allclose(out[2], torch.tensor([math.cos(2), math.sin(2)], dtype=torch.float64))
    # Pairs are (x_i, x_{i+hs/2}); frequencies 10000^(-2i/hs).
    x = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    x[..., 1] = 1.0
    out = rope(x)[0, 0, 1]
    assert torch.allclose(out, torch.tensor([0, math.cos(0.01), 0, math.sin(0.01)], dtype=torch.float64))
    # Scores depend on positions only through i - j.
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    seq = torch.stack([q, k, q, k, q, k]).reshape(1, 1, 6, 8)
    r = rope(seq)[0, 0]
    assert torch.allclose(r[2] @ r[1], r[4] @ r[3]) and torch.allclose(r[0] @ r[1], r[2] @ r[3])


def test_norms_and_gelu():
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    model = _random_model(model_json(dim=8, heads=2))
    ln = model.blocks[0].norm1
    assert torch.allclose(ln(x), F.layer_norm(x, (8,), ln.weight, ln.bias, eps=1e-5))
    rms = _random_model(model_json(dim=8, heads=2, norm="rmsnorm")).blocks[0].norm1
    assert not hasattr(rms, "bias")
    assert torch.allclose(rms(x), x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5) * rms.weight)
    assert torch.allclose(gelu_tanh(x), F.gelu(x, approximate="tanh"))


# ----------------------------------------------------------------------------- config and names

def test_parameter_names_and_shapes():
    cfg = model_json(vocab=5, dim=8, heads=2, layers=1, context=6, ffn_mult=2, ffn_act="swiglu",
                     attention=["cog"])
    assert list(Model(cfg).param_shapes().items()) == [
        ("tok_emb.weight", (5, 8)), ("pos_emb.weight", (6, 8)),
        ("blocks.0.norm1.weight", (8,)), ("blocks.0.norm1.bias", (8,)),
        ("blocks.0.attn.qkv.weight", (24, 8)), ("blocks.0.attn.qkv.bias", (24,)),
        ("blocks.0.attn.proj.weight", (8, 8)), ("blocks.0.attn.proj.bias", (8,)),
        ("blocks.0.norm2.weight", (8,)), ("blocks.0.norm2.bias", (8,)),
        ("blocks.0.ffn.fc.weight", (32, 8)), ("blocks.0.ffn.fc.bias", (32,)),
        ("blocks.0.ffn.proj.weight", (8, 16)), ("blocks.0.ffn.proj.bias", (8,)),
        ("norm_f.weight", (8,)), ("norm_f.bias", (8,)),
        ("head.weight", (5, 8)), ("head.bias", (5,))]
    cis = Model(dict(cfg, arch="cisformer", pos="rope", norm="rmsnorm", cis_maps=["qkv", "ffn_proj"]))
    shapes = cis.param_shapes()
    assert "pos_emb.weight" not in shapes and "blocks.0.norm1.bias" not in shapes
    assert shapes["blocks.0.attn.qkv.weight"] == (6, 24, 8) and shapes["blocks.0.attn.qkv.bias"] == (6, 24)
    assert shapes["blocks.0.attn.proj.weight"] == (8, 8)
    assert shapes["blocks.0.ffn.fc.weight"] == (32, 8)
    assert shapes["blocks.0.ffn.proj.weight"] == (6, 8, 16) and shapes["blocks.0.ffn.proj.bias"] == (6, 8)


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "does not know"),
    ({"attention": ["softmax", "bogus", "softmax"]}, "bogus"),
    ({"attention": ["softmax"]}, "list of 3"),
    ({"pos": "xpos"}, "pos"),
    ({"dim": 30}, "divisible"),
    ({"vocab": 0}, "vocab"),
    ({"arch": "rnn"}, "arch"),
])
def test_config_rejects(change, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_json(model_json(**change))


def test_config_accepts_recurrent_sizes():
    """The engine writes every config key; lstm/mlp sizes do not affect the transformer."""
    cfg = ModelConfig.from_json(json.dumps(model_json(window=0, hidden=64)))
    assert cfg.arch == "transformer" and cfg.attention == ("softmax",) * 3


def test_lstm_matches_torch_lstm():
    """The hand-written LSTM equals torch.nn.LSTM with bias_ih = bias, bias_hh = 0."""
    from attnlab_ref import build_model
    cfg = dict(model_json(), arch="lstm", layers=2, dim=6, attention=[], window=0, hidden=0)
    model = build_model(cfg)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    ref = torch.nn.LSTM(6, 6, num_layers=2, batch_first=True).double()
    with torch.no_grad():
        for l, layer in enumerate(model.lstm):
            getattr(ref, f"weight_ih_l{l}").copy_(layer.weight_ih)
            getattr(ref, f"weight_hh_l{l}").copy_(layer.weight_hh)
            getattr(ref, f"bias_ih_l{l}").copy_(layer.bias)
            getattr(ref, f"bias_hh_l{l}").zero_()
    tokens = torch.randint(0, cfg["vocab"], (2, 5), generator=gen)
    h, _ = ref(model.tok_emb.weight[tokens])
    torch.testing.assert_close(model(tokens), model.head(h), rtol=1e-12, atol=1e-12)


def test_mlp_sees_exactly_its_window():
    from attnlab_ref import build_model
    cfg = dict(model_json(), arch="mlp", layers=2, dim=4, attention=[], window=3, hidden=8)
    model = build_model(cfg)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    tokens = torch.randint(0, cfg["vocab"], (1, 8), generator=gen)
    base = model(tokens)
    changed = tokens.clone()
    changed[0, 2] = (changed[0, 2] + 1) % cfg["vocab"]
    diff = (model(changed) - base).abs().amax(-1)[0]
    assert [bool(d > 0) for d in diff] == [t in (2, 3, 4) for t in range(8)]


def test_load_errors(tmp_path):
    cfg = model_json()
    model = _random_model(cfg)
    params = {n: p.detach().float().numpy() for n, p in model.named_parameters()}
    meta = {"format": "attnlab-1", "kind": "params", "model": json.dumps(cfg)}
    write_safetensors(tmp_path / "ok.safetensors", params, meta)
    loaded, _ = load_model(tmp_path / "ok.safetensors")
    x = _batch(cfg)[0]
    with torch.no_grad():  # the file holds float32: equal up to float32 rounding of the parameters
        assert torch.allclose(loaded(x), model(x), rtol=1e-5, atol=1e-7)
    for n, p in loaded.named_parameters():
        assert torch.equal(p.detach(), torch.from_numpy(params[n]).double())

    broken = dict(params)
    del broken["head.bias"]
    broken["extra.weight"] = params["head.bias"]
    broken["tok_emb.weight"] = params["tok_emb.weight"][:3]
    write_safetensors(tmp_path / "bad.safetensors", broken, meta)
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "bad.safetensors")
    text = str(info.value)
    assert "bad.safetensors" in text and "'head.bias'" in text and "'extra.weight'" in text
    assert "tok_emb.weight: file (3, 32), model (20, 32)" in text
    write_safetensors(tmp_path / "kind.safetensors", params, dict(meta, kind="golden"))
    with pytest.raises(CheckpointError, match="kind"):
        load_model(tmp_path / "kind.safetensors")


# ----------------------------------------------------------------------------- model behaviour

@pytest.mark.parametrize("pos", POSITIONAL)
@pytest.mark.parametrize("name", ATTENTION_MAPS)
def test_causal(name, pos):
    """Logits at position t do not depend on tokens after t (sigmoid aside, whose bias
    -ln T depends on the window length, so compare windows of equal length)."""
    cfg = model_json(attention=[name] * 2, layers=2, pos=pos)
    model = _random_model(cfg)
    x = _batch(cfg, T=8)[0]
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % cfg["vocab"]
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[:, :5], b[:, :5], rtol=0, atol=1e-13)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_sigmoid_bias_uses_window_length():
    cfg = model_json(attention=["sigmoid"] * 3)
    model = _random_model(cfg)
    x = _batch(cfg, T=8)[0]
    with torch.no_grad():
        long, short = model(x), model(x[:, :4])
    assert not torch.allclose(long[:, :4], short, atol=1e-9)
    softmax_model = _random_model(model_json())
    with torch.no_grad():
        assert torch.allclose(softmax_model(x)[:, :4], softmax_model(x[:, :4]), atol=1e-13)


@pytest.mark.parametrize("cis_maps", [["qkv", "proj"], ["fc", "ffn_proj"], ["qkv", "proj", "fc", "ffn_proj"]])
def test_cisformer_with_equal_slices_is_transformer(cis_maps):
    cfg = model_json(ffn_act="swiglu", pos="rope")
    plain = _random_model(cfg)
    cis = Model(dict(cfg, arch="cisformer", cis_maps=cis_maps))
    T = cfg["context"]
    with torch.no_grad():
        for (name, p), q in zip(cis.named_parameters(), plain.parameters()):
            p.copy_(q.expand(p.shape) if p.ndim > q.ndim else q)
    x = _batch(cfg, T=T - 2)[0]
    with torch.no_grad():
        assert torch.allclose(cis(x), plain(x), atol=1e-13)
        # Position-specific: changing slice t of a cis map changes only positions >= t.
        name = "blocks.0.attn.qkv.weight" if "qkv" in cis_maps else "blocks.0.ffn.fc.weight"
        dict(cis.named_parameters())[name][3].mul_(1.5)
        out = cis(x)
    ref = plain(x).detach()
    assert torch.allclose(out[:, :3], ref[:, :3], atol=1e-13) and not torch.allclose(out[:, 3], ref[:, 3])


def test_masked_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, dtype=torch.float64)
    targets = torch.randint(0, 7, (2, 5))
    counted = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 0, 0]], dtype=torch.uint8)
    targets[0, 1] = -100  # uncounted targets are never looked at
    mask = counted.bool()
    expected = F.cross_entropy(logits[mask], targets[mask])
    assert torch.allclose(masked_cross_entropy(logits, targets, counted), expected)
    none = logits.clone().requires_grad_()
    loss = masked_cross_entropy(none, targets, torch.zeros(2, 5, dtype=torch.uint8))
    loss.backward()
    assert float(loss) == 0.0 and (none.grad == 0).all()


def test_init_params():
    model = Model(model_json(layers=4, attention=["softmax", "cog", "cog", "softmax"]))
    init_params(model, seed=1)
    p = dict(model.named_parameters())
    assert (p["blocks.0.norm1.weight"] == 1).all() and (p["blocks.0.norm1.bias"] == 0).all()
    assert (p["head.bias"] == 0).all() and (p["blocks.2.attn.qkv.bias"] == 0).all()
    assert float(p["blocks.0.ffn.fc.weight"].std()) == pytest.approx(0.02, rel=0.05)
    assert float(p["blocks.0.ffn.proj.weight"].std()) == pytest.approx(0.02 / math.sqrt(8), rel=0.05)


@pytest.mark.parametrize("case", list(fake_engine.CASES))
def test_end_to_end(tmp_path, case):
    """Checkpoint -> model -> ten AdamW steps: right shapes, finite, loss goes down."""
    cfg, optim = fake_engine.CASES[case]
    model = _random_model(cfg, seed=1)
    write_safetensors(tmp_path / "m.safetensors", {n: p.detach().float() for n, p in model.named_parameters()},
                      {"format": "attnlab-1", "kind": "params", "model": json.dumps(cfg)})
    model, _ = load_model(tmp_path / "m.safetensors")
    inputs, targets, counted = _batch(cfg, B=3, T=cfg["context"] - 1)
    counted[:, ::3] = 0
    logits = model(inputs)
    assert logits.shape == (3, cfg["context"] - 1, cfg["vocab"]) and torch.isfinite(logits).all()
    losses = train_on_batch(model, inputs, targets, counted, dict(optim, lr=1e-2), 10)
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] - 0.1, losses
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ----------------------------------------------------------------------------- optimizer

def test_learning_rate_schedule():
    o = optim_json(lr=1.0, warmup=4, total_steps=14, min_lr_ratio=0.1)
    assert [learning_rate(s, o) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(9, o) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert learning_rate(14, o) == pytest.approx(0.1)
    const = dict(o, schedule="constant")
    assert learning_rate(2, const) == 0.75 and learning_rate(13, const) == 1.0
    assert learning_rate(0, dict(o, warmup=0, total_steps=0)) == pytest.approx(1.0)


def test_clip_gradients():
    grads = {"a": torch.tensor([3.0], dtype=torch.float64), "b": torch.tensor([[4.0]], dtype=torch.float64)}
    total, coef = clip_gradients(grads, 1.0)
    assert total == 5.0 and coef == pytest.approx(1 / (5 + 1e-6))
    assert float(grads["a"]) == pytest.approx(3 / (5 + 1e-6))
    grads = {"a": torch.tensor([0.3], dtype=torch.float64)}
    assert clip_gradients(grads, 1.0)[1] == 1.0 and float(grads["a"]) == 0.3
    assert clip_gradients({"a": torch.tensor([30.0])}, 0.0)[1] == 1.0  # clip 0: off


def test_adamw_matches_torch():
    torch.manual_seed(0)
    o = optim_json(lr=0.1, weight_decay=0.3, eps=1e-6)
    mine = {"w": torch.randn(3, 4, dtype=torch.float64), "b": torch.randn(4, dtype=torch.float64),
            "t": torch.randn(2, 3, 4, dtype=torch.float64)}
    theirs = {n: p.clone().requires_grad_() for n, p in mine.items()}
    adam = AdamW(mine, o)
    torch_adam = torch.optim.AdamW(
        [{"params": [theirs["w"], theirs["t"]], "weight_decay": o["weight_decay"]},
         {"params": [theirs["b"]], "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    for s in range(6):
        grads = {n: torch.randn_like(p) * 10 ** (s % 3 - 1) for n, p in mine.items()}
        lr = learning_rate(s, o)
        adam.step(grads, lr)
        for group in torch_adam.param_groups:
            group["lr"] = lr
        for n, p in theirs.items():
            p.grad = grads[n].clone()
        torch_adam.step()
    for n in mine:
        assert torch.allclose(mine[n], theirs[n].detach(), rtol=1e-12, atol=1e-14), n


def test_check_optim():
    with pytest.raises(ValueError, match="unknown"):
        check_optim(dict(optim_json(), momentum=0.9))
    with pytest.raises(ValueError, match="missing"):
        check_optim({k: v for k, v in optim_json().items() if k != "clip"})
    with pytest.raises(ValueError, match="schedule"):
        check_optim(optim_json(schedule="linear"))


def test_low_rank_cisformer():
    """cis_rank = r: shared W, b plus U(t) V(t); with U = 0 it is the transformer, and a
    nonzero U(t) changes exactly position t's map (so outputs from t on)."""
    cfg = model_json()
    plain = _random_model(cfg)
    low = Model(dict(cfg, arch="cisformer", cis_maps=["qkv", "ffn_proj"], cis_rank=2))
    shapes = low.param_shapes()
    C, T = cfg["dim"], cfg["context"]
    assert shapes["blocks.0.attn.qkv.weight"] == (3 * C, C)
    assert shapes["blocks.0.attn.qkv.pos_u"] == (T, 3 * C, 2)
    assert shapes["blocks.0.attn.qkv.pos_v"] == (T, 2, C)
    assert "blocks.0.attn.proj.pos_u" not in shapes
    shared = dict(plain.named_parameters())
    with torch.no_grad():
        for name, p in low.named_parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype) if name.endswith("pos_v")
                    else torch.zeros_like(p) if name.endswith("pos_u") else shared[name])
    x = _batch(cfg, T=T - 2)[0]
    with torch.no_grad():
        assert torch.allclose(low(x), plain(x), atol=1e-13)
        dict(low.named_parameters())["blocks.0.attn.qkv.pos_u"][3].normal_()
        out, ref = low(x), plain(x)
    assert torch.allclose(out[:, :3], ref[:, :3], atol=1e-13) and not torch.allclose(out[:, 3], ref[:, 3])
    with pytest.raises(ValueError, match="cis_rank"):
        Model(dict(cfg, cis_rank=2))  # a transformer has no position-specific maps
