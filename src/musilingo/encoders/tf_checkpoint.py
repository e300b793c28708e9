"""Read a TensorFlow (v1/v2 "tensor bundle") checkpoint into numpy arrays, without TensorFlow.

A checkpoint with prefix ``P`` is two kinds of file:

- ``P.index``: a LevelDB-style SSTable (sorted string table) mapping each tensor name to a
  ``BundleEntryProto`` {dtype, shape, shard_id, offset, size, crc32c}; the empty key holds a
  ``BundleHeaderProto`` {num_shards, endianness, version}.
- ``P.data-0000i-of-0000N``: the raw little-endian tensor bytes, at the offsets the index gives.

No library reads this format without TensorFlow itself (the ``tensorflow`` / ``tensorboard``
readers both need the TF runtime, and the LevelDB Python bindings need a database directory, not a
single table file), so the SSTable block format and the few protobuf fields needed are parsed here
by hand (varints, length-delimited fields, fixed32). The layouts followed are LevelDB's
``doc/table_format.md`` and TensorFlow's ``tensor_bundle.proto`` / ``tensor_shape.proto``.

What it does not do: partitioned (sliced) variables, string / resource / variant tensors,
compressed (snappy) table blocks, or checking the crc32c of the tensor data (the index blocks'
checksums *are* checked). Anything it cannot read raises :class:`~musilingo.errors.CheckpointError`
naming the file and the problem.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musilingo.errors import CheckpointError

TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB table magic number, last 8 bytes of the index file
FOOTER_SIZE = 48  # 2 block handles (<= 2 x 2 x 10 bytes of varints), zero padding, 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c

# TensorFlow DataType enum (types.proto) -> numpy dtype, for the plain numeric types.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("float32"),
    2: np.dtype("float64"),
    3: np.dtype("int32"),
    4: np.dtype("uint8"),
    5: np.dtype("int16"),
    6: np.dtype("int8"),
    9: np.dtype("int64"),
    10: np.dtype("bool"),
    17: np.dtype("uint16"),
    19: np.dtype("float16"),
    22: np.dtype("uint32"),
    23: np.dtype("uint64"),
}


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives: decoded ``BundleEntryProto``."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


# ---------------------------------------------------------------------------------------------
# crc32c (Castagnoli), for the SSTable block trailers
# ---------------------------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE: list[int] | None = None


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (pure Python; meant for the small index blocks only)."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _crc32c_table()
    table = _CRC_TABLE
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _unmask_crc(masked: int) -> int:
    # LevelDB stores crc rotated right by 15 bits plus a constant (crc32c.h: Mask / Unmask).
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# varints and protobuf fields
# ---------------------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split a serialized protobuf message into (field number, wire type, value) triples.

    Varints come back as int, length-delimited fields as bytes, fixed32/fixed64 as int.
    """
    out: list[tuple[int, int, int | bytes]] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ValueError("truncated length-delimited field")
            value = bytes(buf[pos : pos + n])
            pos += n
        elif wire == 5:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1); bool unknown_rank = 3."""
    dims = []
    for field, wire, value in _proto_fields(buf):
        if field == 2 and wire == 2:
            size = 0
            for f2, w2, v2 in _proto_fields(value):  # type: ignore[arg-type]
                if f2 == 1 and w2 == 0:
                    size = _signed64(v2)  # type: ignore[arg-type]
            if size < 0:
                raise ValueError(f"unknown dimension ({size}) in a stored tensor")
            dims.append(size)
        elif field == 3 and value:
            raise ValueError("stored tensor has unknown rank")
    return tuple(dims)


def _parse_entry(buf: bytes) -> BundleEntry:
    """BundleEntryProto: dtype=1, shape=2, shard_id=3, offset=4, size=5, crc32c=6, slices=7."""
    dtype, shape, shard, offset, size = 0, (), 0, 0, 0
    for field, wire, value in _proto_fields(buf):
        if field == 1 and wire == 0:
            dtype = value
        elif field == 2 and wire == 2:
            shape = _parse_shape(value)  # type: ignore[arg-type]
        elif field == 3 and wire == 0:
            shard = value
        elif field == 4 and wire == 0:
            offset = _signed64(value)  # type: ignore[arg-type]
        elif field == 5 and wire == 0:
            size = _signed64(value)  # type: ignore[arg-type]
        elif field == 7:
            raise ValueError("partitioned (sliced) variables are not supported")
    return BundleEntry(int(dtype), shape, int(shard), offset, size)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# SSTable
# ---------------------------------------------------------------------------------------------


def _read_block(data: bytes, offset: int, size: int) -> bytes:
    """Return the contents of the block at (offset, size), checking its trailer."""
    if offset < 0 or size < 0 or offset + size + BLOCK_TRAILER_SIZE > len(data):
        raise ValueError(f"block handle ({offset}, {size}) points outside the file")
    block = data[offset : offset + size]
    compression = data[offset + size]
    (masked,) = struct.unpack_from("<I", data, offset + size + 1)
    if compression != 0:
        raise ValueError(f"compressed table blocks (type {compression}) are not supported")
    if crc32c(block + bytes([compression])) != _unmask_crc(masked):
        raise ValueError(f"checksum mismatch in the block at offset {offset}")
    return block


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Decode a table block: prefix-compressed (key, value) entries, then the restart array."""
    if len(block) < 4:
        raise ValueError("block too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    if end < 0:
        raise ValueError("bad restart count in block")
    entries = []
    pos = 0
    key = b""
    while pos < end:
        shared, pos = _varint(block, pos, end)
        unshared, pos = _varint(block, pos, end)
        value_len, pos = _varint(block, pos, end)
        if shared > len(key) or pos + unshared + value_len > end:
            raise ValueError("corrupt block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable held in ``data``, in key order."""
    if len(data) < FOOTER_SIZE:
        raise ValueError(f"file too short for a table footer ({len(data)} bytes)")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise ValueError("not an SSTable (bad magic number)")
    pos = 0
    _meta_off, pos = _varint(footer, pos, 40)
    _meta_size, pos = _varint(footer, pos, 40)
    index_off, pos = _varint(footer, pos, 40)
    index_size, pos = _varint(footer, pos, 40)
    entries = []
    for _last_key, handle in _block_entries(_read_block(data, index_off, index_size)):
        off, p = _varint(handle, 0, len(handle))
        size, _ = _varint(handle, p, len(handle))
        entries.extend(_block_entries(_read_block(data, off, size)))
    return entries


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def _index_path(prefix: str | os.PathLike) -> Path:
    p = str(prefix)
    if p.endswith(".index"):
        return Path(p)
    if os.path.isdir(p):
        # A folder holding an unnamed checkpoint (".index", ".data-..."), as the musicnn wheel does.
        return Path(p) / ".index"
    return Path(p + ".index")


def read_index(prefix: str | os.PathLike) -> dict[str, BundleEntry]:
    """Tensor name -> :class:`BundleEntry` from ``<prefix>.index`` (header entry excluded)."""
    path = _index_path(prefix)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint index ({e.strerror or e})") from e
    try:
        entries = read_table(data)
        out: dict[str, BundleEntry] = {}
        for key, value in entries:
            if key == b"":  # BundleHeaderProto: num_shards=1, endianness=2 (0 = little), version=3
                for field, wire, v in _proto_fields(value):
                    if field == 2 and wire == 0 and v != 0:
                        raise ValueError("big-endian checkpoints are not supported")
                continue
            out[key.decode("utf-8")] = _parse_entry(value)
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise CheckpointError(f"{path}: malformed checkpoint index: {e}") from e
    return out


def read_checkpoint(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at ``prefix`` as name -> numpy array (own memory).

    ``prefix`` is the checkpoint prefix (``.../model.ckpt``), its ``.index`` file, or a folder
    holding an unnamed checkpoint (``folder/.index``). Raises CheckpointError on a missing or
    malformed index or data file.
    """
    index_path = _index_path(prefix)
    entries = read_index(prefix)
    base = str(index_path)[: -len(".index")]
    num_shards = max((e.shard_id for e in entries.values()), default=0) + 1
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        if e.dtype not in _DTYPES:
            raise CheckpointError(f"{index_path}: tensor {name!r} has unsupported dtype {e.dtype}")
        if e.shard_id not in shards:
            shard_path = Path(f"{base}.data-{e.shard_id:05d}-of-{num_shards:05d}")
            try:
                shards[e.shard_id] = shard_path.read_bytes()
            except OSError as err:
                raise CheckpointError(
                    f"{shard_path}: cannot read checkpoint data ({err.strerror or err})"
                ) from err
        data = shards[e.shard_id]
        dtype = _DTYPES[e.dtype].newbyteorder("<")
        count = int(np.prod(e.shape, dtype=np.int64))
        if count * dtype.itemsize != e.size:
            raise CheckpointError(
                f"{index_path}: tensor {name!r} of shape {e.shape} and dtype {dtype} needs "
                f"{count * dtype.itemsize} bytes, index says {e.size}"
            )
        if e.offset < 0 or e.offset + e.size > len(data):
            raise CheckpointError(
                f"{base}.data-{e.shard_id:05d}-of-{num_shards:05d}: tensor {name!r} at "
                f"[{e.offset}, {e.offset + e.size}) lies past the end of the file "
                f"({len(data)} bytes)"
            )
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=e.offset).reshape(e.shape)
        out[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return out
