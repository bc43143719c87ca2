"""PyTorch DeepLab -> .tflite (float32, float16 weights, int8) with TFLite metadata.

Pipeline: litert-torch converts the model once to a float32 flatbuffer with NHWC input
and output (``to_channel_last_io``: no TRANSPOSE ops left, batch norm folded);
ai-edge-quantizer derives fp16 or int8 from those bytes (no second conversion); the
result is repacked with short tensor names and 16-byte aligned buffers inside the
flatbuffer (the quantizer writes them after it, which the metadata writer and older
runtimes do not accept); then seglite's metadata writer adds labels, normalization and
MediaPipe's output activation.

int8 is static post-training quantization calibrated on real images, with float input
and output kept by default (the INPUT and OUTPUT ops are not quantized): MediaPipe refuses
int8 input tensors, and float I/O keeps the exact ``(x - 127.5) / 127.5`` normalization.
``uint8_input`` gives raw uint8 pixels instead (MediaPipe accepts those; Coral and NPU
toolchains want them), at the cost of a zero point of 128 where 127.5 is exact.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import OptionError, require
from ..metadata import SegmentationMetadata, write_metadata
from ..tflite_file import builtin_code, pack_model
from .core import ExportError, ExportSource, first_line, normalize

INPUT_NAME = "image"
CALIBRATION_THREADS = 2


# ----------------------------------------------------------------------------- quiet natives


@contextlib.contextmanager
def captured_output() -> Iterator[Callable[[], str]]:
    """Send fd 1 and 2 to a temporary file for the block; yields a reader of what was written.

    The converters print progress lines and C++ logs straight to the file descriptors;
    they are noise on success and the explanation on failure.
    """
    import sys

    try:
        fds = [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, OSError, ValueError):  # pytest capture, notebooks
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(fd) for fd in fds]
        try:
            for fd in fds:
                os.dup2(sink.fileno(), fd)

            def read() -> str:
                sink.flush()
                sink.seek(0)
                return sink.read().decode("utf-8", "replace")

            yield read
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, old in zip(fds, saved):
                os.dup2(old, fd)
                os.close(old)


def _failure(what: str, exc: BaseException, log: str) -> ExportError:
    """One line: which tool failed and its own first line of explanation."""
    detail = first_line(exc)
    if detail in ("", type(exc).__name__):
        lines = [ln.strip() for ln in log.splitlines() if "error" in ln.lower()]
        detail = lines[-1][:300] if lines else type(exc).__name__
    return ExportError(f"{what} failed: {type(exc).__name__}: {detail}")


# ----------------------------------------------------------------------------- conversion


def export_friendly(model):
    """A copy of ``model`` whose image-level pooling broadcast converts correctly.

    litert-torch 0.10 lowers ``expand`` after a fused 1x1 conv + ReLU into a RESHAPE to
    NCHW followed by a BROADCAST_TO an NHWC shape, which the runtime rejects ("Output shape
    must be broadcastable", node BROADCAST_TO). A nearest resize of the 1x1 map is the same
    broadcast, converts cleanly, and is what TF DeepLab graphs do (a resize).
    """
    import torch.nn.functional as F
    from torch import nn

    from ..models.heads import ImagePooling

    class _ResizePooling(nn.Module):
        def __init__(self, src: ImagePooling) -> None:
            super().__init__()
            self.pool, self.conv = src.pool, src.conv

        def forward(self, x):
            return F.interpolate(self.conv(self.pool(x)), size=x.shape[-2:], mode="nearest")

    clone = copy.deepcopy(model).eval()
    for name, module in list(clone.named_modules()):
        if isinstance(module, ImagePooling):
            parent_name, _, attr = name.rpartition(".")
            parent = clone.get_submodule(parent_name) if parent_name else clone
            setattr(parent, attr, _ResizePooling(module))
    return clone


def _wrap(model, argmax: bool, num_classes: int | None):
    """NCHW logits model -> the module that is exported (logits, or class ids as uint8)."""
    import torch
    from torch import nn

    class _Export(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            y = self.net(x)
            if not argmax:
                return y
            ids = y.argmax(1)
            return ids.to(torch.uint8) if (num_classes or 256) <= 256 else ids.to(torch.int32)

    return _Export(model).eval()


def convert(
    model, input_size: tuple[int, int], *, argmax: bool = False, num_classes: int | None = None
) -> bytes:
    """float32 .tflite bytes of ``model`` at ``input_size`` (H, W), NHWC in and out (slow)."""
    torch = require("torch", "export")
    with captured_output():
        litert_torch = require("litert_torch", "export")
    h, w = input_size
    net = _wrap(export_friendly(model), argmax, num_classes)
    module = litert_torch.to_channel_last_io(net, args=[0], outputs=[] if argmax else [0]).eval()
    sample = torch.zeros(1, h, w, 3)
    with captured_output() as read:
        try:
            with torch.no_grad():
                edge = litert_torch.convert(module, (sample,))
            return bytes(edge.model_content())
        except Exception as exc:
            raise _failure("TFLite conversion (litert-torch)", exc, read()) from None


# ----------------------------------------------------------------------------- quantization


def _signature(float_model: bytes) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    with captured_output():
        sigs = Interpreter(model_content=float_model).get_signature_list()
    key = next(iter(sigs))
    return key, sigs[key]["inputs"][0]


def quantize(float_model: bytes, precision: str, *, calibration: np.ndarray | None = None) -> bytes:
    """fp16 weights, or static int8 calibrated on ``calibration`` (uint8 NHWC pixels).

    fp32 returns the bytes unchanged. ai-edge-quantizer works on the float flatbuffer, so
    each precision costs seconds, not a new conversion.
    """
    if precision == "fp32":
        return float_model
    with captured_output():
        require("ai_edge_quantizer", "export")
        from ai_edge_quantizer import qtyping, quantizer
    ops = qtyping.TFLOperationName.ALL_SUPPORTED
    q = quantizer.Quantizer(bytearray(float_model))
    calib_result = None
    # The quantizer's interpreters warn that preserving all tensors is "for debugging".
    with captured_output() as read, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            if precision == "fp16":
                q.add_weight_only_config(
                    regex=".*", operation_name=ops, num_bits=16, algorithm_key="float_casting"
                )
            elif precision == "int8":
                if calibration is None or len(calibration) == 0:
                    raise OptionError("int8 needs calibration images (--calibration DIR)")
                q.add_static_config(
                    regex=".*", operation_name=ops, activation_num_bits=8, weight_num_bits=8
                )
                # Float in and out: MediaPipe takes float32 or uint8 inputs, never int8.
                recipe = list(q.get_quantization_recipe())
                for op in ("INPUT", "OUTPUT"):
                    recipe.append({"regex": ".*", "operation": op, "algorithm_key": "no_quantize"})
                q.load_quantization_recipe(recipe)
                key, name = _signature(float_model)
                samples = [{name: normalize(p[None])} for p in calibration]
                calib_result = q.calibrate({key: samples}, num_threads=CALIBRATION_THREADS)
            else:
                raise OptionError(f"unknown precision {precision!r}")
            result = q.quantize(calib_result, enable_progress_report=False)
        except OptionError:
            raise
        except Exception as exc:
            raise _failure(f"{precision} quantization (ai-edge-quantizer)", exc, read()) from None
    return bytes(result.quantized_model)


# ----------------------------------------------------------------------------- repacking


def _short_name(name: str) -> str:
    """'...Wrapper/pkg.DeepLab_wrapped/pkg.ASPP_head/pkg.ConvBNAct_conv/...ReLU_act;;...'
    -> 'head.conv.act': the module path of the first fused op, without the wrappers."""
    first = name.split(";")[0]
    if "/" not in first:
        return first[:80]
    attrs = []
    for part in first.split("/"):
        cls_attr = part.rsplit(".", 1)[-1].lstrip("_")
        _, sep, attr = cls_attr.partition("_")
        if sep and attr:
            attrs.append(attr)
    while attrs and attrs[0] in ("wrapped", "net"):
        attrs.pop(0)
    return ".".join(attrs)[:80] or first[:80]


# Raw pixels q in 0..255 mean (q - 127.5) / 127.5; an integer zero point cannot say 127.5,
# so 128 it is: every pixel reads half a level darker, far below int8's own rounding.
UINT8_INPUT_SCALE = 1 / 127.5
UINT8_INPUT_ZERO_POINT = 128


def _make_uint8_input(model) -> None:
    """Float input -> QUANTIZE(int8) becomes uint8 input -> QUANTIZE (a requantization)."""
    from ai_edge_litert import schema_py_generated as schema

    sg = model.subgraphs[0]
    index = sg.inputs[0]
    users = [op for op in sg.operators if index in list(op.inputs)]
    if len(users) != 1 or builtin_code(model, users[0]) != schema.BuiltinOperator.QUANTIZE:
        raise ExportError("uint8 input needs an int8 model whose input feeds one QUANTIZE op")
    tensor = sg.tensors[index]
    tensor.type = schema.TensorType.UINT8
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [UINT8_INPUT_SCALE], [UINT8_INPUT_ZERO_POINT]
    tensor.quantization = q


def repack(model_bytes: bytes, *, output_name: str = "logits", uint8_input: bool = False) -> bytes:
    """Buffers inside the flatbuffer (16-byte aligned), short unique tensor names, the
    signature's input called ``image`` and output ``logits`` / ``classes``; optionally
    a uint8 input for an int8 model (raw pixels, as Coral and NPU toolchains want).

    Drops anything after the flatbuffer (an old metadata zip); metadata entries stay.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    if uint8_input:
        _make_uint8_input(model)
    for sg in model.subgraphs:
        seen: dict[str, int] = {}
        io = {sg.inputs[0]: INPUT_NAME, sg.outputs[0]: output_name} if sg.inputs else {}
        for i, tensor in enumerate(sg.tensors):
            raw = tensor.name.decode("utf-8", "replace") if tensor.name else f"t{i}"
            short = io.get(i) or _short_name(raw)
            n = seen.get(short, 0)
            seen[short] = n + 1
            tensor.name = (short if n == 0 else f"{short}:{n}").encode()
    for sig in model.signatureDefs or []:
        if sig.inputs:
            sig.inputs[0].name = INPUT_NAME.encode()
        if sig.outputs:
            sig.outputs[0].name = output_name.encode()
    return pack_model(model, len(model_bytes))


# ----------------------------------------------------------------------------- metadata


def segmentation_metadata(
    source: ExportSource,
    *,
    precision: str = "fp32",
    argmax: bool = False,
    uint8_input: bool = False,
) -> SegmentationMetadata:
    """What MediaPipe, the Task Library and seglite read: labels, normalization, softmax.

    A uint8 input keeps the normalization options (the official quantized models do too):
    runtimes ignore them for integer inputs, and they still document the model."""
    from .. import __version__

    io = "uint8 input, float output" if uint8_input else "float input/output"
    what = {"fp32": "float32", "fp16": "float16 weights", "int8": f"int8 ({io})"}
    out = "class ids (ArgMax)" if argmax else "logits"
    return SegmentationMetadata(
        name=f"{source.name} ({precision})",
        description=(
            f"{source.description}; {what[precision]}; input RGB "
            f"{'uint8 pixels' if uint8_input else 'float normalized as (pixel - 127.5) / 127.5'}"
            f", NHWC; output {out} NHWC at the input size. "
            f"Exported by seglite {__version__} from {source.origin}."
        ),
        version=__version__,
        author="seglite",
        input_mean=(127.5,),
        input_std=(127.5,),
        labels=list(source.labels),
        label_file_name="labelmap.txt",
        output_activation="NONE" if argmax else "SOFTMAX",
        color_space="RGB",
        accurate_scales=source.accurate_scales,
    )


# ----------------------------------------------------------------------------- driver


def _check_float_model(data: bytes, input_size: tuple[int, int], argmax: bool) -> None:
    """A reused float model must be the one this export would convert."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with captured_output():
            interp = Interpreter(model_content=bytes(data))
    except (ValueError, RuntimeError) as exc:
        raise OptionError(
            f"the float model to reuse is not a TFLite model ({first_line(exc)})"
        ) from None
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    want = [1, *input_size, 3]
    if list(inp["shape"]) != want or inp["dtype"] != np.float32:
        raise OptionError(
            f"the float model to reuse takes {list(inp['shape'])} {inp['dtype'].__name__}, "
            f"this export needs {want} float32"
        )
    if (len(out["shape"]) == 3) != argmax:
        raise OptionError("the float model to reuse does not match --argmax")


def export_tflite(
    model,
    *,
    input_size: tuple[int, int],
    precision: str = "fp32",
    calibration: np.ndarray | None = None,
    argmax: bool = False,
    metadata: SegmentationMetadata | None = None,
    float_model: bytes | None = None,
    uint8_input: bool = False,
    log: Callable[[str], None] | None = None,
) -> bytes:
    """The finished .tflite bytes: converted (or ``float_model`` reused), quantized,
    repacked, with metadata. ``uint8_input`` (int8 only): raw pixels in, not floats."""
    say = log or (lambda _msg: None)
    if precision == "int8" and (calibration is None or len(calibration) == 0):
        raise OptionError("int8 needs calibration images (--calibration DIR)")
    if uint8_input and precision != "int8":
        raise OptionError("--uint8-input applies to int8 models only")
    num_classes = getattr(model, "num_classes", None)
    if float_model is None:
        h, w = input_size
        say(f"converting to TFLite with litert-torch at {h}x{w} (takes a minute)")
        float_model = convert(model, input_size, argmax=argmax, num_classes=num_classes)
    else:
        _check_float_model(float_model, input_size, argmax)
    if precision != "fp32":
        say(f"quantizing to {precision} with ai-edge-quantizer")
    data = quantize(float_model, precision, calibration=calibration)
    data = repack(data, output_name="classes" if argmax else "logits", uint8_input=uint8_input)
    if metadata is not None:
        data = write_metadata(data, metadata)
    return data
