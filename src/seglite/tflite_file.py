"""Read and rewrite TFLite flatbuffers with the schema's object API (ai_edge_litert ships it).

One place for the detail the generated packer gets wrong: buffer data must be 16-byte
aligned (``force_align: 16`` in the schema), or XNNPACK and mmap readers copy or refuse.
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import ModelError


def unpack_model(data: bytes):
    """The model as a mutable ``ModelT``; only models with their buffers inside the file."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    if any((b.offset or 0) > 1 for b in model.buffers or []):
        raise ModelError("model: models with external (>2 GB) buffers are not supported")
    return model


def pack_model(model, size_hint: int = 0) -> bytes:
    """Serialize a ``ModelT`` (as from :func:`unpack_model`) with aligned buffers."""
    import flatbuffers

    aligned = aligned_buffer_class()
    for buf in model.buffers or []:
        buf.__class__ = aligned
    builder = flatbuffers.Builder(size_hint + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def builtin_code(model, op) -> int:
    """The builtin operator of ``op``: codes past 127 live only in ``builtinCode``, older
    writers fill only ``deprecatedBuiltinCode``; the larger of the two is the real one."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def text(s: str | bytes | None) -> str | None:
    """Flatbuffer strings come back as bytes from the object API."""
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else s


@functools.cache
def aligned_buffer_class():
    from ai_edge_litert import schema_py_generated as schema

    class AlignedBuffer(schema.BufferT):
        """BufferT whose data vector is 16-byte aligned."""

        def Pack(self, builder):  # noqa: N802 (flatbuffers API)
            data = None
            if self.data is not None:
                payload = np.asarray(self.data, dtype=np.uint8).reshape(-1).tobytes()
                builder.StartVector(1, len(payload), 16)
                builder.head -= len(payload)
                builder.Bytes[builder.head : builder.head + len(payload)] = payload
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset or 0)
            schema.BufferAddSize(builder, self.size or 0)
            return schema.BufferEnd(builder)

    return AlignedBuffer


def aligned_buffer(data: np.ndarray | None):
    buf = aligned_buffer_class()()
    buf.data = data
    return buf
