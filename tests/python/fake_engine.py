"""A float32 stand-in for the C++ engine's `attnlab golden` command: writes case folders in
the golden contract by running the reference model in float32. It exercises the golden
checker and calibrates its tolerances without the binary; `mutate` plants an engine bug
that the checker must catch."""

import copy
import json

import torch

from attnlab_ref import Model, init_params, write_safetensors
from attnlab_ref.optim import loss_and_grads, train_on_batch

STEPS = 10


def model_json(**overrides):
    """A small resolved model config; keyword arguments replace entries."""
    cfg = {"arch": "transformer", "vocab": 20, "dim": 32, "layers": 3, "heads": 4,
           "context": 12, "ffn_mult": 4, "ffn_act": "gelu", "norm": "layernorm",
           "norm_position": "pre", "pos": "learned",
           "attention": ["softmax", "softmax", "softmax"], "cis_maps": ["qkv", "proj"]}
    cfg.update(overrides)
    return cfg


def optim_json(**overrides):
    optim = {"lr": 3e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1,
             "warmup": 3, "total_steps": 10, "schedule": "cosine", "min_lr_ratio": 0.1, "clip": 1.0}
    optim.update(overrides)
    return optim


def _maps(*names):
    return list(names)


# Every map, the cogformer preset, every positional encoding, both norms and norm positions,
# every FFN activation, the cisformer with default and full cis_maps and low rank, both schedules.
CASES = {
    "softmax_learned": (model_json(), optim_json()),
    "expressive_sinusoidal": (model_json(attention=_maps("expressive", "expressive", "expressive"),
                                         pos="sinusoidal"), optim_json()),
    "quadratic_rope": (model_json(attention=_maps("quadratic", "quadratic", "quadratic"), pos="rope"),
                       optim_json(schedule="constant", clip=0.0)),
    "cog_alibi": (model_json(attention=_maps("cog", "cog", "cog"), pos="alibi"), optim_json()),
    "extensive_none": (model_json(attention=_maps("extensive", "extensive", "extensive"), pos="none"),
                       optim_json()),
    "sigmoid_learned": (model_json(attention=_maps("sigmoid", "sigmoid", "sigmoid")), optim_json()),
    "cogformer_rope": (model_json(layers=4, attention=_maps("softmax", "cog", "cog", "softmax"),
                                  pos="rope"), optim_json()),
    "mixed_rmsnorm_post_relu": (model_json(attention=_maps("extensive", "sigmoid", "quadratic"),
                                           norm="rmsnorm", norm_position="post", ffn_act="relu",
                                           pos="alibi"), optim_json(lr=1e-2)),
    "expressive_swiglu_post": (model_json(attention=_maps("expressive", "softmax", "cog"),
                                          ffn_act="swiglu", norm_position="post"), optim_json()),
    "cis_default": (model_json(arch="cisformer"), optim_json()),
    "cis_all_rope_swiglu": (model_json(arch="cisformer", cis_maps=["qkv", "proj", "fc", "ffn_proj"],
                                       attention=_maps("cog", "sigmoid", "softmax"), pos="rope",
                                       ffn_act="swiglu", norm="rmsnorm"), optim_json()),
    "cis_low_rank": (model_json(arch="cisformer", cis_maps=["qkv", "ffn_proj"], cis_rank=2), optim_json()),
}

MUTATIONS = ("weight_decay", "attention", "schedule", "grad", "logits", "step_losses")


def _nontrivial_params(model, seed):
    """docs/models.md init, then small random biases and gains so no term is trivially zero/one."""
    init_params(model, seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", ".pos_u")):  # pos_u: the low-rank factor that starts at 0
                p.add_(0.02 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            elif ".norm" in "." + name:
                p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return {n: p.detach().float().numpy().copy() for n, p in model.named_parameters()}


def write_case(case_dir, model, optim, seed, batch=3, mutate=None):
    """Writes case_dir/model.safetensors and case_dir/golden.safetensors for `model` (the
    resolved JSON dict) and `optim`, computing like a float32 engine would."""
    assert mutate in (None,) + MUTATIONS, mutate
    case_dir.mkdir(parents=True, exist_ok=True)
    params = _nontrivial_params(Model(model), seed)
    meta = {"format": "attnlab-1", "model": json.dumps(model)}
    write_safetensors(case_dir / "model.safetensors", params, {**meta, "kind": "params"})

    gen = torch.Generator().manual_seed(seed)
    T = model["context"] - seed % 3  # some windows shorter than the context
    inputs = torch.randint(0, model["vocab"], (batch, T), generator=gen)
    targets = torch.randint(0, model["vocab"], (batch, T), generator=gen)
    counted = torch.rand(batch, T, generator=gen) < 0.7
    counted[0, -1] = True

    engine_model, engine_optim = copy.deepcopy(model), dict(optim)
    if mutate == "attention":  # the engine computes layer 0 with another map
        engine_model["attention"] = list(model["attention"])
        engine_model["attention"][0] = "expressive" if model["attention"][0] != "expressive" else "softmax"
    if mutate == "weight_decay":
        engine_optim["weight_decay"] = 0.0
    if mutate == "schedule":
        engine_optim["schedule"] = "constant" if optim["schedule"] == "cosine" else "cosine"
    engine = Model(engine_model).float()
    engine.load_params(params)

    # The batch runs in reverse order: the same math, but sums over the batch round
    # differently than in the checker's float32 twin, as they would in a separate engine.
    flipped = [t.flip(0) for t in (inputs, targets, counted)]
    logits, loss, grads = loss_and_grads(engine, *flipped)
    logits = logits.flip(0)
    losses = train_on_batch(engine, *flipped, engine_optim, STEPS)
    golden = {
        "inputs": inputs.to(torch.int32), "targets": targets.to(torch.int32),
        "counted": counted.to(torch.uint8), "logits": logits, "loss": loss.reshape(1),
        **{f"grad.{n}": g for n, g in grads.items()},
        "step_losses": torch.tensor(losses, dtype=torch.float32),
        **{f"final.{n}": p.detach() for n, p in engine.named_parameters()},
    }
    if mutate == "grad":  # one gradient off by 1e-3 relative
        name = "grad.blocks.0.attn.qkv.weight"
        golden[name] = golden[name] * (1 + 1e-3)
    if mutate == "logits":
        golden["logits"] = golden["logits"].clone()
        golden["logits"][0, -1, 0] += 1e-3 * golden["logits"].abs().max()
    if mutate == "step_losses":
        golden["step_losses"] = golden["step_losses"].clone()
        golden["step_losses"][-1] += 1e-3 * golden["step_losses"][-1]
    golden = {n: t.detach().numpy() for n, t in golden.items()}
    write_safetensors(case_dir / "golden.safetensors", golden,
                      {**meta, "kind": "golden", "optim": json.dumps(optim)})
    return case_dir
