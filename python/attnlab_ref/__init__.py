"""attnlab_ref: an independent float64 PyTorch reference of the attnlab models, optimizer and
checkpoint format, used to check the C++ engine (tests/python/test_golden.py)."""

from .io import CheckpointError, read_json_metadata, read_safetensors, write_safetensors
from .model import (ATTENTION_MAPS, POSITIONAL, Model, ModelConfig, attention_weights, build_model,
                    init_params, load_model, masked_cross_entropy)
from .optim import AdamW, clip_gradients, learning_rate, loss_and_grads, train_on_batch

__all__ = [
    "CheckpointError", "read_json_metadata", "read_safetensors", "write_safetensors",
    "ATTENTION_MAPS", "POSITIONAL", "Model", "ModelConfig", "build_model", "attention_weights", "init_params",
    "load_model", "masked_cross_entropy",
    "AdamW", "clip_gradients", "learning_rate", "loss_and_grads", "train_on_batch",
]
