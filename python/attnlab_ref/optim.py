"""Reference AdamW, learning-rate schedule and global-norm clipping: the optimizer contract
shared with the C++ engine, written as plain loops over named float64 tensors."""

import math

import torch

from .model import masked_cross_entropy

OPTIM_KEYS = ("lr", "beta1", "beta2", "eps", "weight_decay", "warmup", "total_steps",
              "schedule", "min_lr_ratio", "clip")
SCHEDULES = ("cosine", "constant")
CLIP_EPS = 1e-6  # coef = clip / (total_norm + 1e-6)


def check_optim(optim):
    """Validates the `optim` JSON object; unknown or missing keys are errors."""
    missing = [k for k in OPTIM_KEYS if k not in optim]
    unknown = sorted(set(optim) - set(OPTIM_KEYS))
    if missing or unknown:
        raise ValueError(f"optim config: missing {missing}, unknown {unknown}; expected {list(OPTIM_KEYS)}")
    if optim["schedule"] not in SCHEDULES:
        raise ValueError(f"optim.schedule = {optim['schedule']!r}; valid: {list(SCHEDULES)}")
    return optim


def learning_rate(step, optim):
    """Learning rate at 0-based step `step`: linear warm-up over `warmup` steps, then
    cosine decay to lr * min_lr_ratio at total_steps, or constant."""
    lr, warmup = optim["lr"], optim["warmup"]
    if step < warmup:
        return lr * (step + 1) / warmup
    if optim["schedule"] == "constant":
        return lr
    progress = (step - warmup) / max(1, optim["total_steps"] - warmup)
    ratio = optim["min_lr_ratio"]
    return lr * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def clip_gradients(grads, clip):
    """Scales all gradients (name -> tensor, in place) by clip / (norm + 1e-6) if that is
    below 1, norm the global L2 norm. Returns (norm, coefficient applied)."""
    total = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    if clip <= 0:
        return total, 1.0
    coef = clip / (total + CLIP_EPS)
    if coef >= 1:
        return total, 1.0
    for g in grads.values():
        g.mul_(coef)
    return total, coef


def decays(name, p):
    """Weight decay applies to matrices (embeddings included), never to biases or gains."""
    return p.ndim >= 2 and not name.endswith(".bias")


class AdamW:
    """AdamW with decoupled weight decay on weight matrices only (ndim >= 2 and not a
    bias: the cisformer's per-position biases [T, out] are not decayed); t counts from 1."""

    def __init__(self, params, optim):
        self.params = dict(params)  # name -> tensor, updated in place
        self.optim = check_optim(optim)
        self.m = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.t = 0

    @torch.no_grad()
    def step(self, grads, lr):
        o = self.optim
        b1, b2, eps, wd = o["beta1"], o["beta2"], o["eps"], o["weight_decay"]
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            if decays(name, p):
                p.mul_(1 - lr * wd)
            p.sub_(lr * (m / c1) / (torch.sqrt(v / c2) + eps))


def loss_and_grads(model, inputs, targets, counted):
    """Forward + backward on one batch. Returns (logits, loss, name -> gradient)."""
    model.zero_grad(set_to_none=True)
    logits = model(inputs)
    loss = masked_cross_entropy(logits, targets, counted)
    loss.backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
             for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads


def train_on_batch(model, inputs, targets, counted, optim, steps, on_step=None):
    """`steps` optimizer steps on the same batch, as in the golden contract: per step
    s = 0.., loss and gradients at the current parameters, clipping, AdamW with
    learning_rate(s). Returns the loss before each step. on_step(s, lr, grads, adam) is
    called after each update (grads after clipping)."""
    adam = AdamW({n: p.data for n, p in model.named_parameters()}, optim)
    losses = []
    for s in range(steps):
        _, loss, grads = loss_and_grads(model, inputs, targets, counted)
        losses.append(float(loss))
        clip_gradients(grads, optim["clip"])
        lr = learning_rate(s, optim)
        adam.step(grads, lr)
        if on_step is not None:
            on_step(s, lr, grads, adam)
    return losses
