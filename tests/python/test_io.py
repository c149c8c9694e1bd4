"""Tests of the reference's safetensors reader and writer: round trips, the byte layout of
docs/checkpoint-format.md, and rejection of truncated or corrupt files."""

import json
import struct

import numpy as np
import pytest
import torch

from attnlab_ref import CheckpointError, read_safetensors, write_safetensors
from attnlab_ref.io import read_json_metadata


def _sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "w": rng.standard_normal((3, 4)).astype(np.float32),
        "d": rng.standard_normal((2, 2, 2)),
        "tokens": rng.integers(-5, 100, (2, 5)).astype(np.int32),
        "big": rng.integers(-2**40, 2**40, (3,)).astype(np.int64),
        "flags": rng.integers(0, 2, (7,)).astype(np.uint8),
        "one": np.array([1.5], dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.array(2.0, dtype=np.float64),
    }


def _header(path):
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return n, json.loads(blob[8:8 + n]), blob


def _write_raw(path, header, data, header_len=None):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if header_len is None else header_len) + text + data)


def test_round_trip(tmp_path):
    tensors = _sample_tensors()
    meta = {"format": "attnlab-1", "kind": "params", "model": json.dumps({"dim": 4})}
    write_safetensors(tmp_path / "a.safetensors", tensors, meta)
    back, back_meta = read_safetensors(tmp_path / "a.safetensors")
    assert back_meta == meta
    assert list(back) == list(tensors)  # file order = write order
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape, name
        assert np.array_equal(back[name], array), name
        assert back[name].flags.writeable
    assert read_json_metadata(back_meta, "model") == {"dim": 4}


def test_layout(tmp_path):
    """Header length little-endian u64, JSON padded to a multiple of 8, data in order."""
    write_safetensors(tmp_path / "a.safetensors",
                      {"x": np.array([1, 2], np.int32), "y": np.array([3.0], np.float32)}, {"kind": "params"})
    n, header, blob = _header(tmp_path / "a.safetensors")
    assert n % 8 == 0 and len(blob) == 8 + n + 12
    assert header["__metadata__"] == {"kind": "params"}
    assert header["x"] == {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}
    assert header["y"] == {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}
    assert blob[8 + n:] == struct.pack("<iif", 1, 2, 3.0)


def test_reads_hand_written_file(tmp_path):
    header = {"b": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]},
              "a": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]},
              "__metadata__": {"kind": "golden"}}
    _write_raw(tmp_path / "h.safetensors", header, struct.pack("<iid", 7, -1, 0.25))
    tensors, meta = read_safetensors(tmp_path / "h.safetensors")
    assert list(tensors) == ["a", "b"]  # data order, not header order
    assert tensors["a"].tolist() == [7, -1] and tensors["b"].tolist() == [0.25]
    assert meta == {"kind": "golden"}


def test_writes_little_endian_and_torch(tmp_path):
    big_endian = np.array([1.0, -2.0], dtype=">f4")
    write_safetensors(tmp_path / "a.safetensors", {"b": big_endian, "t": torch.arange(3, dtype=torch.int64)})
    n, _, blob = _header(tmp_path / "a.safetensors")
    assert blob[8 + n:8 + n + 8] == struct.pack("<ff", 1.0, -2.0)
    back, meta = read_safetensors(tmp_path / "a.safetensors")
    assert back["b"].tolist() == [1.0, -2.0] and back["t"].tolist() == [0, 1, 2] and meta == {}


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        write_safetensors(tmp_path / "a.safetensors", {"h": np.zeros(2, np.float16)})
    with pytest.raises(TypeError, match="metadata"):
        write_safetensors(tmp_path / "a.safetensors", {}, {"n": 3})
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


@pytest.mark.parametrize("keep", [0, 5, 8, 20, -1])
def test_rejects_truncated(tmp_path, keep):
    write_safetensors(tmp_path / "a.safetensors", _sample_tensors(), {"kind": "params"})
    blob = (tmp_path / "a.safetensors").read_bytes()
    (tmp_path / "a.safetensors").write_bytes(blob[:keep] if keep >= 0 else blob[:-3])
    with pytest.raises(CheckpointError, match="truncated"):
        read_safetensors(tmp_path / "a.safetensors")


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CORRUPT = {
    "bad json": lambda p: p.write_bytes(struct.pack("<Q", 4) + b"{no}"),
    "not utf-8": lambda p: p.write_bytes(struct.pack("<Q", 2) + b"\xff\xfe"),
    "not an object": lambda p: _write_raw(p, [1, 2], b""),
    "header length huge": lambda p: p.write_bytes(struct.pack("<Q", 2**62) + b"{}"),
    "unknown dtype": lambda p: _write_raw(p, {"x": _entry(dtype="BF16", offsets=(0, 4))}, bytes(4)),
    "negative shape": lambda p: _write_raw(p, {"x": _entry(shape=(-2,))}, bytes(8)),
    "size mismatch": lambda p: _write_raw(p, {"x": _entry(shape=(3,))}, bytes(8)),
    "reversed offsets": lambda p: _write_raw(p, {"x": _entry(offsets=(8, 0))}, bytes(8)),
    "missing field": lambda p: _write_raw(p, {"x": {"dtype": "F32", "shape": [2]}}, bytes(8)),
    "extra field": lambda p: _write_raw(p, {"x": {**_entry(), "crc": 1}}, bytes(8)),
    "overlap": lambda p: _write_raw(p, {"x": _entry(), "y": _entry(offsets=(4, 12))}, bytes(12)),
    "gap": lambda p: _write_raw(p, {"x": _entry(), "y": _entry(offsets=(12, 20))}, bytes(20)),
    "not from zero": lambda p: _write_raw(p, {"x": _entry(offsets=(4, 12))}, bytes(12)),
    "trailing bytes": lambda p: _write_raw(p, {"x": _entry()}, bytes(12)),
    "metadata not strings": lambda p: _write_raw(p, {"__metadata__": {"n": 3}}, b""),
    "duplicate key": lambda p: p.write_bytes(
        struct.pack("<Q", 2 * len(json.dumps(_entry())) + 11) + b'{"x":' + json.dumps(_entry()).encode()
        + b',"x":' + json.dumps(_entry()).encode() + b"}" + bytes(8)),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_rejects_corrupt(tmp_path, kind):
    path = tmp_path / "c.safetensors"
    CORRUPT[kind](path)
    with pytest.raises(CheckpointError) as info:
        read_safetensors(path)
    assert str(path) in str(info.value)  # the error names the file


def test_json_metadata_errors():
    with pytest.raises(CheckpointError, match="no 'model'"):
        read_json_metadata({"kind": "params"}, "model", "f")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_json_metadata({"model": "{"}, "model", "f")
    with pytest.raises(CheckpointError, match="JSON object"):
        read_json_metadata({"model": "[1]"}, "model", "f")
