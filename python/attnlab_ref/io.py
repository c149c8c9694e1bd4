"""Reader and writer for attnlab checkpoints (safetensors layout, docs/checkpoint-format.md),
in plain Python + NumPy so the reference needs no `safetensors` package."""

import json
import math
import os
import struct
import tempfile

import numpy as np

# safetensors dtype code -> NumPy dtype (always little-endian on disk).
DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "U8": np.dtype("u1"),
}
_CODES = {dt.newbyteorder("<").str: code for code, dt in DTYPES.items()}

# A header larger than this is certainly corrupt (attnlab headers are a few KiB).
MAX_HEADER_BYTES = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable or does not match what the reader expects."""


def _reject_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise CheckpointError(f"duplicate key {key!r} in header")
        obj[key] = value
    return obj


def _parse_entry(path, name, entry):
    """Validates one header entry; returns (dtype, shape, begin, end)."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointError(f"{where}: entry must hold exactly dtype, shape, data_offsets, got {entry!r}")
    code = entry["dtype"]
    if code not in DTYPES:
        raise CheckpointError(f"{where}: unknown dtype {code!r}; valid: {sorted(DTYPES)}")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise CheckpointError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    offsets = entry["data_offsets"]
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(n) is int and n >= 0 for n in offsets) or offsets[0] > offsets[1]):
        raise CheckpointError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                              f"got {offsets!r}")
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPES[code].itemsize
    if end - begin != nbytes:
        raise CheckpointError(f"{where}: data_offsets span {end - begin} bytes but {code} {shape} needs {nbytes}")
    return DTYPES[code], tuple(shape), begin, end


def read_safetensors(path):
    """Returns (tensors, metadata): tensors maps name -> NumPy array (native byte order,
    in file order), metadata the `__metadata__` string map ({} if absent)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise CheckpointError(f"{path}: truncated, {len(blob)} bytes is too short for the 8-byte header length")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: corrupt, header length {header_len} exceeds {MAX_HEADER_BYTES} bytes")
    if 8 + header_len > len(blob):
        raise CheckpointError(f"{path}: truncated, header says {header_len} header bytes but the file has only "
                              f"{len(blob) - 8} after the length field")
    try:
        header = json.loads(blob[8:8 + header_len].decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt, header is not valid UTF-8 JSON ({e})") from None
    except CheckpointError as e:
        raise CheckpointError(f"{path}: corrupt, {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt, header must be a JSON object")

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise CheckpointError(f"{path}: __metadata__ must map strings to strings")

    entries = sorted(((_parse_entry(path, name, e), name) for name, e in header.items()),
                     key=lambda item: (item[0][2], item[0][3]))
    data = memoryview(blob)[8 + header_len:]
    # The tensors must tile the data section exactly: no overlap, no gap, no trailing bytes.
    cursor = 0
    for (_, _, begin, end), name in entries:
        if begin != cursor:
            kind = "overlaps the previous tensor" if begin < cursor else f"leaves a gap after byte {cursor}"
            raise CheckpointError(f"{path}: corrupt, tensor {name!r} at data offset {begin} {kind}")
        cursor = end
    if cursor > len(data):
        raise CheckpointError(f"{path}: truncated, header says the data section has {cursor} bytes "
                              f"but the file holds {len(data)}")
    if cursor < len(data):
        raise CheckpointError(f"{path}: corrupt, {len(data) - cursor} trailing bytes after the last tensor")

    tensors = {}
    for (dtype, shape, begin, end), name in entries:
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Writes name -> array (NumPy arrays or CPU torch tensors, in the given order) and a
    string map of metadata; atomically (temporary file, then rename)."""
    path = os.fspath(path)
    metadata = dict(metadata or {})
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata must map str to str, got {k!r}: {type(v).__name__}")
    header = {"__metadata__": metadata} if metadata else {}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a valid tensor name")
        if hasattr(array, "detach"):  # torch tensor
            array = array.detach().cpu().numpy()
        array = np.asarray(array)
        code = _CODES.get(array.dtype.newbyteorder("<").str)
        if code is None:
            raise TypeError(f"tensor {name!r}: dtype {array.dtype} is not one of {sorted(DTYPES)}")
        raw = np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad so the data section starts 8-byte aligned

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in chunks:
                f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json_metadata(metadata, key, path="checkpoint"):
    """Parses metadata[key], which holds a JSON object, with an error naming file and key."""
    if key not in metadata:
        raise CheckpointError(f"{path}: metadata has no {key!r} entry (has: {sorted(metadata)})")
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata {key!r} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: metadata {key!r} must be a JSON object")
    return value
