"""TFLite metadata of segmentation models: a small reader and writer of TFLITE_METADATA.

Why hand-made: the official writer (tflite-support) needs libusb and pins protobuf<4, and
MediaPipe's bundled writer does not import in current wheels. The metadata is a flatbuffer
(tflite-support's metadata_schema.fbs, file identifier "M001") kept in a model buffer whose
entry in ``Model.metadata`` is named "TFLITE_METADATA"; the files it names (the label map)
live in a zip appended to the model file. Only the subset a segmenter needs is handled:
model info, input normalization and colour space, the output label map, MediaPipe's
"SEGMENTER_METADATA" custom metadata (output activation), and seglite's own
"SEGLITE_METADATA" custom metadata (JSON: the model's ``--accurate`` scales), which other
readers skip by its name.

Reading runs at every model load, so it walks the flatbuffer in place with bounds-checked
accessors (no copy of the weights) and turns any inconsistency into a one-line ModelError.

Over 400 lines because reader and writer are one schema: they share the field tables and
the bounds-checked accessors, and split apart they would have to agree by convention.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError, OptionError
from .labels import parse_label_lines

METADATA_NAME = "TFLITE_METADATA"
SEGMENTER_METADATA_NAME = "SEGMENTER_METADATA"  # MediaPipe's custom metadata for segmenters
SEGLITE_METADATA_NAME = "SEGLITE_METADATA"  # seglite's: JSON, e.g. {"accurate_scales": [1, 1.5]}
MAX_SEGLITE_METADATA = 4096  # bytes: a few numbers, never a payload
ACTIVATIONS = ("NONE", "SIGMOID", "SOFTMAX")  # mediapipe.tasks.Activation, in enum order
COLOR_SPACES = ("UNKNOWN", "RGB", "GRAYSCALE")  # tflite.ColorSpaceType, in enum order
_TENSOR_AXIS_LABELS = 2  # tflite.AssociatedFileType
_IMAGE_PROPERTIES = 2  # tflite.ContentProperties union tag
_NORMALIZATION_OPTIONS = 1  # tflite.ProcessUnitOptions union tag
_FLOAT32, _UINT8, _INT8 = 0, 3, 9  # tflite.TensorType

_U8, _I8, _U16, _I32, _U32, _U64 = (struct.Struct(f"<{c}") for c in "BbHiIQ")


@dataclass
class SegmentationMetadata:
    """What TFLite metadata says about a segmentation model (None where it says nothing).

    ``labels`` come from the first TENSOR_AXIS_LABELS file of the last output tensor (the
    one MediaPipe and the Task Library use); ``display_names`` from the label files of the
    same tensor that carry a locale. ``min_parser_version`` and ``associated_files`` are
    computed by :func:`write_metadata`, which ignores the values given here.
    """

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    labels: list[str] | None = None
    label_file_name: str | None = None
    output_activation: str | None = None
    color_space: str | None = None
    min_parser_version: str | None = None
    associated_files: list[str] = field(default_factory=list)
    display_names: dict[str, list[str]] = field(default_factory=dict)
    accurate_scales: tuple[float, ...] | None = None  # SEGLITE_METADATA: --accurate's tiles


class _Corrupt(Exception):
    """A flatbuffer offset points outside the data: truncated or not a flatbuffer."""


class _Table:
    """A flatbuffer table read in place; field ids are those of the .fbs (0, 1, ...)."""

    __slots__ = ("buf", "pos", "_vt", "_vtlen")

    def __init__(self, buf: bytes, pos: int) -> None:
        _need(buf, pos, 4)
        vt = pos - _I32.unpack_from(buf, pos)[0]
        _need(buf, vt, 4)
        self._vtlen, size = struct.unpack_from("<HH", buf, vt)
        _need(buf, vt, self._vtlen)  # the vtable and the table's inline fields fit the data
        _need(buf, pos, size)
        self.buf, self.pos, self._vt = buf, pos, vt

    def _at(self, fid: int) -> int:
        """Absolute position of a field, 0 when absent (default value)."""
        slot = 4 + 2 * fid
        if slot + 2 > self._vtlen:
            return 0
        rel = _U16.unpack_from(self.buf, self._vt + slot)[0]
        return self.pos + rel if rel else 0

    def scalar(self, fid: int, fmt: struct.Struct = _U8, default: int = 0) -> int:
        p = self._at(fid)
        if not p:
            return default
        _need(self.buf, p, fmt.size)
        return fmt.unpack_from(self.buf, p)[0]

    def _ref(self, fid: int) -> int:
        p = self._at(fid)
        if not p:
            return 0
        _need(self.buf, p, 4)
        return p + _U32.unpack_from(self.buf, p)[0]

    def table(self, fid: int) -> _Table | None:
        p = self._ref(fid)
        return _Table(self.buf, p) if p else None

    def vector(self, fid: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of a vector field, (0, 0) when absent; checked to fit the data."""
        p = self._ref(fid)
        if not p:
            return 0, 0
        _need(self.buf, p, 4)
        n = _U32.unpack_from(self.buf, p)[0]
        _need(self.buf, p + 4, n * elem_size)
        return p + 4, n

    def blob(self, fid: int) -> bytes | None:
        start, n = self.vector(fid, 1)
        return bytes(self.buf[start : start + n]) if start else None

    def string(self, fid: int) -> str | None:
        raw = self.blob(fid)
        return None if raw is None else raw.decode("utf-8", "replace")

    def numbers(self, fid: int, code: str) -> tuple:
        start, n = self.vector(fid, struct.calcsize(code))
        return struct.unpack_from(f"<{n}{code}", self.buf, start) if start else ()

    def tables(self, fid: int) -> list[_Table]:
        start, n = self.vector(fid, 4)
        offs = struct.unpack_from(f"<{n}I", self.buf, start) if start else ()
        return [_Table(self.buf, start + 4 * i + o) for i, o in enumerate(offs)]


def _need(buf: bytes, pos: int, size: int) -> None:
    if pos < 0 or pos + size > len(buf):
        raise _Corrupt


def _root(buf: bytes, ident: bytes) -> _Table:
    if len(buf) < 8 or buf[4:8] != ident:
        raise _Corrupt
    return _Table(buf, _U32.unpack_from(buf, 0)[0])


def _load(model: bytes | str | Path) -> tuple[bytes, str]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "model"
    try:
        return Path(model).read_bytes(), str(model)
    except OSError as exc:
        raise ModelError(f"cannot read model file {model}: {exc.strerror or exc}") from None


def _open_model(data: bytes, src: str) -> _Table:
    """The TFLite Model table, after checking that the file is whole (cheap: no weight reads)."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        what = "an empty file" if not data else "no 'TFL3' identifier"
        raise ModelError(f"{src}: not a TFLite model ({what}); pass a .tflite file")
    try:
        model = _root(data, b"TFL3")
        for buf in model.tables(4):  # Model.buffers: Buffer.data, or offset/size past the end
            buf.vector(0, 1)
            off, size = buf.scalar(1, _U64), buf.scalar(2, _U64)
            if off > 1:
                _need(data, off, size)
        model.vector(3, 1)  # Model.description
        for code in model.tables(1):  # Model.operator_codes: the builder often writes them last
            code.scalar(0, _I8)
            code.vector(1, 1)
            code.scalar(2, _I32)
            code.scalar(3, _I32)
        for sg in model.tables(2):  # Model.subgraphs: tensors, inputs, outputs, operators
            for t in sg.tables(0):
                t.vector(0, 4)
                t.table(4)  # quantization
            sg.vector(1, 4)
            sg.vector(2, 4)
            for op in sg.tables(3):
                op.vector(1, 4)
                op.vector(2, 4)
                op.table(4)  # builtin_options
        return model
    except (_Corrupt, struct.error):
        raise ModelError(
            f"{src}: corrupt or truncated TFLite model; download or export it again"
        ) from None


def _metadata_buffer(model: _Table, data: bytes) -> bytes | None:
    for entry in model.tables(6):  # Model.metadata: Metadata{name, buffer}
        if entry.string(0) == METADATA_NAME:
            buffers = model.tables(4)
            idx = entry.scalar(1, _U32)
            if idx >= len(buffers):
                raise _Corrupt
            buf = buffers[idx]
            off, size = buf.scalar(1, _U64), buf.scalar(2, _U64)
            if off > 1:
                return data[off : off + size]
            return buf.blob(0) or b""
    return None


def read_metadata(model: bytes | str | Path) -> SegmentationMetadata | None:
    """The segmentation metadata of a .tflite file or its bytes; None when it has none."""
    data, src = _load(model)
    root = _open_model(data, src)
    try:
        raw = _metadata_buffer(root, data)
        if raw is None:
            return None
        meta, files = _parse(raw)
    except (_Corrupt, struct.error, IndexError):
        raise ModelError(
            f"{src}: corrupt TFLITE_METADATA; re-export the model or strip its metadata"
        ) from None
    if files:
        _read_label_files(meta, files, data, src)
    return meta


def _parse(raw: bytes) -> tuple[SegmentationMetadata, list[tuple[str, str | None]]]:
    """Metadata fields, plus the label files of the last output as (name, locale)."""
    root = _root(raw, b"M001")  # ModelMetadata
    meta = SegmentationMetadata(
        name=root.string(0),
        description=root.string(1),
        version=root.string(2),
        author=root.string(4),
        license=root.string(5),
        min_parser_version=root.string(7),
    )
    files = list(root.tables(6))
    label_files: list[tuple[str, str | None]] = []
    subgraphs = root.tables(3)
    if subgraphs:
        sg = subgraphs[0]  # SubGraphMetadata
        inputs, outputs = sg.tables(2), sg.tables(3)
        if inputs:
            _parse_input(inputs[0], meta)
        for t in [*inputs, *outputs]:
            files += t.tables(6)
        files += sg.tables(4)
        if outputs:
            for af in outputs[-1].tables(6):
                if af.scalar(2, _I8) == _TENSOR_AXIS_LABELS and af.string(0):
                    label_files.append((af.string(0), af.string(3)))
        for custom in sg.tables(9):  # CustomMetadata{name, data}
            if custom.string(0) == SEGMENTER_METADATA_NAME:
                opts = _root(custom.blob(1) or b"", b"V001")  # ImageSegmenterOptions
                act = opts.scalar(0, _I8)
                meta.output_activation = ACTIVATIONS[act] if 0 <= act < 3 else f"UNKNOWN({act})"
            elif custom.string(0) == SEGLITE_METADATA_NAME:
                _parse_seglite(custom.blob(1) or b"", meta)
    names = (af.string(0) for af in files)
    meta.associated_files = list(dict.fromkeys(n for n in names if n))
    return meta, label_files


def _parse_seglite(raw: bytes, meta: SegmentationMetadata) -> None:
    from .runtime.info import declared_scales

    if len(raw) > MAX_SEGLITE_METADATA:
        raise ModelError(f"{SEGLITE_METADATA_NAME} is {len(raw):,} bytes; not seglite's")
    try:
        values = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ModelError(f"{SEGLITE_METADATA_NAME} is not JSON") from None
    scales = values.get("accurate_scales") if isinstance(values, dict) else None
    if scales is not None:
        meta.accurate_scales = declared_scales(scales, SEGLITE_METADATA_NAME)


def _parse_input(tensor: _Table, meta: SegmentationMetadata) -> None:
    content = tensor.table(3)
    if content is not None and content.scalar(0) == _IMAGE_PROPERTIES:
        props = content.table(1)
        if props is not None:
            cs = props.scalar(0, _I8)
            meta.color_space = COLOR_SPACES[cs] if 0 <= cs < 3 else f"UNKNOWN({cs})"
    for unit in tensor.tables(4):  # ProcessUnit{options_type, options}
        opts = unit.table(1)
        if unit.scalar(0) == _NORMALIZATION_OPTIONS and opts is not None:
            meta.input_mean = opts.numbers(0, "f") or None
            meta.input_std = opts.numbers(1, "f") or None


# A label file is a few kilobytes (ADE20K's 151 names: 1.5 KB); anything far larger in a
# model's zip is a decompression bomb, refused before it is inflated.
MAX_LABEL_FILE = 1 << 20
MAX_LABEL_FILES = 64


def _read_label_files(
    meta: SegmentationMetadata, files: list[tuple[str, str | None]], data: bytes, src: str
) -> None:
    """Labels from the zip appended to the model (zipfile finds it after the flatbuffer).

    Sizes are checked from the zip's directory and again while inflating (the directory
    can lie), so a hostile model costs at most MAX_LABEL_FILE bytes per label file.
    """
    if len(files) > MAX_LABEL_FILES:
        raise ModelError(f"{src}: metadata names {len(files)} label files; not a real model")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            texts = {name: _read_small(zf, name, src) for name, _ in files}
    except ModelError:
        raise
    except Exception as exc:  # BadZipFile, zlib.error, NotImplementedError (a method), ...
        raise ModelError(
            f"{src}: metadata names label file {files[0][0]!r} but it cannot be read from the "
            f"model ({type(exc).__name__}); the file is truncated or was modified"
        ) from None
    primary = next((name for name, loc in files if not loc), files[0][0])
    meta.label_file_name = primary
    meta.labels = parse_label_lines(texts[primary])
    meta.display_names = {loc: parse_label_lines(texts[n]) for n, loc in files if loc}


def _read_small(zf: zipfile.ZipFile, name: str, src: str) -> str:
    info = zf.getinfo(name)
    if info.file_size > MAX_LABEL_FILE:
        raise ModelError(
            f"{src}: label file {name!r} claims {info.file_size:,} bytes (a label file is a few "
            "KB); refusing to inflate it"
        )
    with zf.open(info) as fh:
        raw = fh.read(MAX_LABEL_FILE + 1)
    if len(raw) > MAX_LABEL_FILE:
        raise ModelError(f"{src}: label file {name!r} inflates past {MAX_LABEL_FILE:,} bytes")
    return raw.decode("utf-8-sig")


# --------------------------------------------------------------------------- writing


def write_metadata(
    model_bytes: bytes,
    meta: SegmentationMetadata,
    *,
    label_file_name: str | None = None,
) -> bytes:
    """A copy of the model with ``meta`` as its TFLITE_METADATA and the label map appended.

    Written as tflite-support's MetadataPopulator does (MediaPipe and the Task Library
    read it): the metadata flatbuffer replaces an existing TFLITE_METADATA buffer or is
    appended as a new one, other metadata entries and all weights stay byte-identical, and
    the label files follow the model as an uncompressed zip. ``label_file_name`` defaults
    to ``meta.label_file_name`` or "labelmap.txt". A float input needs ``input_mean`` and
    ``input_std`` for MediaPipe to load the model.
    """
    data = bytes(model_bytes)
    root = _open_model(data, "model")
    _validate(meta)
    label_name = label_file_name or meta.label_file_name or "labelmap.txt"
    files = _label_files(meta, label_name)
    try:
        inputs, n_outputs = _io_tensors(root)
    except (_Corrupt, struct.error, IndexError):
        raise ModelError("model: corrupt TFLite model (bad input tensor)") from None
    raw = _build_metadata(meta, inputs, n_outputs, [(n, loc) for n, loc, _ in files])
    out = _replace_metadata(data, raw)
    if files:  # "w" after the model, not "a": no search for a zip among the weights
        buf = io.BytesIO()
        buf.write(out)
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, _, text in files:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                zf.writestr(info, text.encode("utf-8"))
        out = buf.getvalue()
    return out


def _validate(meta: SegmentationMetadata) -> None:
    if meta.output_activation not in (None, *ACTIVATIONS):
        raise OptionError(
            f"output_activation must be one of {', '.join(ACTIVATIONS)}, "
            f"not {meta.output_activation!r}"
        )
    if meta.color_space not in (None, *COLOR_SPACES):
        raise OptionError(f"color_space must be one of {', '.join(COLOR_SPACES)}")
    mean, std = meta.input_mean, meta.input_std
    if (mean is None) != (std is None) or (mean is not None and len(mean) != len(std)):
        raise OptionError("input_mean and input_std must be given together, of equal length")
    if std is not None and (not std or any(s == 0 for s in std)):
        raise OptionError("input_std must be non-empty and non-zero")
    if meta.accurate_scales is not None:
        from .runtime.info import declared_scales

        try:
            declared_scales(meta.accurate_scales, "metadata")
        except ModelError as exc:
            raise OptionError(str(exc)) from None


def _label_files(meta: SegmentationMetadata, name: str) -> list[tuple[str, str | None, str]]:
    """(file name, locale, text) of the label map and its localized display names."""
    if not meta.labels:
        return []
    stem, dot, ext = name.rpartition(".")
    files = [(name, None, "\n".join(meta.labels) + "\n")]
    for loc, names in meta.display_names.items():
        loc_name = f"{stem}_{loc}.{ext}" if dot else f"{name}_{loc}"
        files.append((loc_name, loc, "\n".join(names) + "\n"))
    return files


def _io_tensors(model: _Table) -> tuple[list[tuple[tuple[int, ...], int]], int]:
    """(shape, type) of each input of subgraph 0, and its number of outputs."""
    subgraphs = model.tables(2)
    if not subgraphs:
        raise ModelError("model: the TFLite model has no subgraph")
    sg = subgraphs[0]
    tensors = sg.tables(0)
    inputs = []
    for i in sg.numbers(1, "i"):
        t = tensors[i]
        inputs.append((t.numbers(0, "i"), t.scalar(1, _I8)))
    return inputs, len(sg.numbers(2, "i"))


class _Builder:
    """Thin helpers over flatbuffers.Builder for tables written field by field."""

    def __init__(self) -> None:
        import flatbuffers

        self.b = flatbuffers.Builder(1024)

    def string(self, s: str | None) -> int | None:
        return None if s is None else self.b.CreateString(s)

    def blob(self, raw: bytes, align: int = 1) -> int:
        self.b.Prep(align, len(raw))  # the data itself starts on an `align` boundary
        return self.b.CreateByteVector(raw)

    def floats(self, values) -> int:
        return self.b.CreateNumpyVector(np.asarray(values, dtype="<f4"))

    def refs(self, offsets: list[int]) -> int:
        self.b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def table(self, n_fields: int, refs=(), bytes_=(), ints=()) -> int:
        """A table from (field id, value) pairs; None or default values are left out."""
        b = self.b
        b.StartObject(n_fields)
        for fid, v in ints:
            if v:
                b.PrependInt32Slot(fid, v, 0)
        for fid, v in refs:
            if v is not None:
                b.PrependUOffsetTRelativeSlot(fid, v, 0)
        for fid, v in bytes_:
            if v:
                b.PrependInt8Slot(fid, v, 0)
        return b.EndObject()

    def finish(self, root: int, ident: bytes) -> bytes:
        self.b.Finish(root, file_identifier=ident)
        return bytes(self.b.Output())


def _build_metadata(
    meta: SegmentationMetadata,
    inputs: list[tuple[tuple[int, ...], int]],
    n_outputs: int,
    label_files: list[tuple[str, str | None]],
) -> bytes:
    """The ModelMetadata flatbuffer, laid out like tflite-support's ImageSegmenterWriter."""
    fb = _Builder()
    in_mds = [_input_md(fb, meta, shape, ttype) for shape, ttype in inputs]
    out_mds = [_output_md(fb, label_files) for _ in range(max(n_outputs, 1))]
    customs = []  # CustomMetadata{name, data}
    if meta.output_activation is not None:
        seg = _Builder()  # mediapipe.tasks.ImageSegmenterOptions{activation, min_parser_version}
        act = ACTIVATIONS.index(meta.output_activation)
        seg_opts = seg.table(2, refs=[(1, seg.string("1.0.0"))], bytes_=[(0, act)])
        data = fb.blob(seg.finish(seg_opts, b"V001"), align=16)
        customs.append(fb.table(2, refs=[(0, fb.string(SEGMENTER_METADATA_NAME)), (1, data)]))
    if meta.accurate_scales:
        text = json.dumps({"accurate_scales": [float(s) for s in meta.accurate_scales]})
        data = fb.blob(text.encode("utf-8"))
        customs.append(fb.table(2, refs=[(0, fb.string(SEGLITE_METADATA_NAME)), (1, data)]))
    custom = fb.refs(customs) if customs else None
    sg = fb.table(
        10, refs=[(2, fb.refs(in_mds)), (3, fb.refs(out_mds)), (9, custom)]
    )  # SubGraphMetadata
    # min_parser_version as metadata_version.cc computes it: custom metadata is from 1.5.0.
    parser = "1.5.0" if custom is not None else "1.0.0"
    text = [meta.name, meta.description, meta.version, None, meta.author, meta.license]
    refs = [(i, fb.string(s)) for i, s in enumerate(text) if s is not None]
    refs += [(3, fb.refs([sg])), (7, fb.string(parser))]
    return fb.finish(fb.table(8, refs=refs), b"M001")


def _input_md(fb: _Builder, meta: SegmentationMetadata, shape: tuple[int, ...], ttype: int) -> int:
    """TensorMetadata of an image input: RGB image properties, normalization, value range."""
    h, w = (shape[1], shape[2]) if len(shape) == 4 else (0, 0)
    units = stats = None
    lo, hi = (0.0, 255.0) if ttype in (_UINT8, _INT8) else (None, None)
    if meta.input_mean is not None and meta.input_std is not None:
        mean = np.asarray(meta.input_mean, np.float32)
        std = np.asarray(meta.input_std, np.float32)
        norm = fb.table(2, refs=[(0, fb.floats(mean)), (1, fb.floats(std))])
        units = fb.refs([fb.table(2, refs=[(1, norm)], bytes_=[(0, _NORMALIZATION_OPTIONS)])])
        if ttype == _FLOAT32:
            lo_v, hi_v = (0 - mean) / std, (255 - mean) / std
            stats = fb.table(2, refs=[(0, fb.floats(hi_v)), (1, fb.floats(lo_v))])
            lo, hi = float(lo_v.min()), float(hi_v.max())
    cs = COLOR_SPACES.index(meta.color_space or "RGB")
    props = fb.table(2, bytes_=[(0, cs)])
    content = fb.table(3, refs=[(1, props)], bytes_=[(0, _IMAGE_PROPERTIES)])
    desc = f"Input image to be segmented. The expected image is {w} x {h}, with three channels"
    desc += " (red, green and blue) per pixel."
    if lo is not None:
        desc += f" Each element in the tensor is a value between {lo:g} and {hi:g}."
    return fb.table(
        7,
        refs=[(0, fb.string("image")), (1, fb.string(desc)), (3, content), (4, units), (5, stats)],
    )


def _output_md(fb: _Builder, label_files: list[tuple[str, str | None]]) -> int:
    """TensorMetadata of a mask output: grayscale image over dims 1..2, label map files."""
    props = fb.table(2, bytes_=[(0, COLOR_SPACES.index("GRAYSCALE"))])
    value_range = fb.table(2, ints=[(0, 1), (1, 2)])
    content = fb.table(3, refs=[(1, props), (2, value_range)], bytes_=[(0, _IMAGE_PROPERTIES)])
    afs = []
    for name, loc in label_files:
        desc = "Label of classes that this model can recognize."
        refs = [(0, fb.string(name)), (1, fb.string(desc)), (3, fb.string(loc))]
        afs.append(fb.table(5, refs=refs, bytes_=[(2, _TENSOR_AXIS_LABELS)]))
    desc = "Masks over the target objects with high accuracy."
    refs = [(0, fb.string("segmentation_masks")), (1, fb.string(desc)), (3, content)]
    if afs:
        refs.append((6, fb.refs(afs)))
    return fb.table(7, refs=refs)


def _replace_metadata(data: bytes, raw: bytes) -> bytes:
    """Repack the model with TFLITE_METADATA set, weights byte-identical and 16-aligned."""
    from ai_edge_litert import schema_py_generated as tfl

    from .tflite_file import aligned_buffer, pack_model, text, unpack_model

    model = unpack_model(data)
    model.metadata = model.metadata or []
    new = aligned_buffer(np.frombuffer(raw, np.uint8))
    for entry in model.metadata:
        if text(entry.name) == METADATA_NAME:
            model.buffers[entry.buffer] = new
            break
    else:
        entry = tfl.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers)
        model.buffers.append(new)
        model.metadata.append(entry)
    return pack_model(model, len(data) + len(raw))
