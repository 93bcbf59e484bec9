"""Reading IDX files (the MNIST family's format), gzipped or not, into uint8 tensors."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import torch

from workbench.base.errors import DataError

_UBYTE = 0x08


def read_idx(path: Path) -> torch.Tensor:
    """Return the array stored in an IDX file of unsigned bytes (``.gz`` allowed).

    Raises DataError naming the file when it is not IDX, is truncated, or holds another type.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc}); download it again.") from None
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number).")
    dtype, ndim = raw[2], raw[3]
    if dtype != _UBYTE:
        raise DataError(f"{path} holds IDX type 0x{dtype:02x}; only unsigned bytes (0x08) are supported.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (its header is incomplete).")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = 1
    for dim in shape:
        count *= dim
    if count == 0:
        raise DataError(f"{path} holds no data (its shape is {tuple(shape)}).")
    if len(raw) - header != count:
        raise DataError(f"{path} is truncated or padded: expected {count} bytes of data for shape "
                        f"{tuple(shape)}, found {len(raw) - header}.")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(shape)


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file, gzipped when the name ends in ``.gz``."""
    array = array.to(torch.uint8).contiguous()
    data = bytes([0, 0, _UBYTE, array.dim()]) + struct.pack(f">{array.dim()}I", *array.shape)
    data += array.numpy().tobytes()
    path.write_bytes(gzip.compress(data, compresslevel=6) if path.suffix == ".gz" else data)
