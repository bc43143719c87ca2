"""A PNG encoder fed band by band, so a full-size picture never has to exist at once.

Pillow encodes PNG only from a complete image, so a 16 MP overlay costs a second full
picture (64 MB: Pillow keeps RGB at 4 bytes a pixel) beside the photo it was drawn from.
Here each band of rows is filtered and compressed as it is made and then dropped: the
memory is the compressed bytes plus one band. PNG is simple and fixed (RFC 2083): the
signature, an IHDR chunk, zlib-compressed filtered rows in IDAT chunks, IEND. No
maintained Python package streams numpy rows at C speed (pypng walks rows in Python and
builds its own row objects), hence this writer; Pillow still decodes everything.

Rows use PNG's "up" filter (each byte minus the byte above it), computed for a whole
band in one numpy subtraction: photographs compress about as well as with Pillow's
default at the same zlib level.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)
_IDAT_SIZE = 1 << 20  # bytes of compressed data per IDAT chunk


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_bands(
    width: int, height: int, channels: int, bands: Iterable[np.ndarray], *, level: int = 1
) -> bytes:
    """PNG bytes of an 8-bit image given as consecutive bands of rows, top to bottom.

    Each band is a (rows, width, channels) or (rows, width) uint8 array; together they
    must cover exactly ``height`` rows."""
    if channels not in _CHANNELS:
        raise ValueError(f"PNG bands must have 1, 3 or 4 channels, not {channels}")
    out = bytearray(SIGNATURE)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, _CHANNELS[channels], 0, 0, 0)
    out += _chunk(b"IHDR", ihdr)
    z = zlib.compressobj(level)
    pending = bytearray()
    previous = np.zeros((1, width * channels), np.uint8)
    rows = 0
    for band in bands:
        band = np.ascontiguousarray(band, dtype=np.uint8).reshape(len(band), width * channels)
        rows += len(band)
        if rows > height:
            raise ValueError(f"bands hold more than {height} rows")
        stacked = np.concatenate([previous, band])
        filtered = np.empty((len(band), 1 + width * channels), np.uint8)
        filtered[:, 0] = 2  # filter type "up"
        np.subtract(stacked[1:], stacked[:-1], out=filtered[:, 1:])  # wraps mod 256
        previous = band[-1:].copy()
        pending += z.compress(filtered.tobytes())
        while len(pending) >= _IDAT_SIZE:
            out += _chunk(b"IDAT", bytes(pending[:_IDAT_SIZE]))
            del pending[:_IDAT_SIZE]
    if rows != height:
        raise ValueError(f"bands hold {rows} rows, not {height}")
    pending += z.flush()
    if pending:
        out += _chunk(b"IDAT", bytes(pending))
    out += _chunk(b"IEND", b"")
    return bytes(out)
