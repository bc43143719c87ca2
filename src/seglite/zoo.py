"""The model zoo: which models seglite knows, where their files come from, and checksums.

``resolve(model)`` turns what a user typed (nothing, a zoo name, a file path) into a file on
disk, in this order:

1. ``None`` means ``DEFAULT_MODEL``; an existing file path is used as given (its zoo entry,
   if any, is found by size and then sha256, so an arbitrary file is rarely hashed);
2. for a zoo name: the copy shipped inside the package (``packaged`` entries), then
   ``$SEGLITE_MODEL_DIR/<filename>`` (``os.pathsep``-separated folders allowed), then the user
   cache dir, then a download into the cache from the official URL (or
   ``$SEGLITE_ZOO_MIRROR/<filename>``) unless ``SEGLITE_OFFLINE=1``.

Files in the model dir and cache are checked against the recorded sha256 once per process.
A wrong file in the model dir is the user's to fix (we say so); a wrong cached file is ours,
so it is deleted and downloaded again.

Its length is mostly the registry itself (``register(...)`` entries, one per model with
its provenance, label set and checksum); the resolution logic is the last 180 lines.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError, ModelNotFoundError, OptionError
from .files import ASSETS, sha256_file
from .labels import LABEL_SETS

DEFAULT_MODEL = "deeplabv3"

_GCS = "https://storage.googleapis.com/download.tensorflow.org/models/tflite"
_CORAL = "https://github.com/google-coral/test_data/raw/master"
_TFHUB = "https://tfhub.dev"
# The camvid models already enlarge a 480x360 frame 1.5x into their input, so --accurate's
# tiles are 1x and 4/3 of the input: the frame at 1.5x and 2x, the default preset's sizes
# for a model that runs at the frame's size. The default (1.5x and 2x the input) scored
# 53.6 against 54.9 on the unseen drive 0006R0 at 2.5x the time (configs/README.md).
_CAMVID_ACCURATE = (1.0, 4 / 3)


@dataclass(frozen=True)
class ModelEntry:
    """One zoo model: where its file comes from and what it outputs.

    ``labels`` is a key of ``seglite.labels.LABEL_SETS``; ``input_size`` is (height, width);
    ``output`` is "logits" (N x H x W x C scores), "argmax" (class ids) or "sigmoid" (one
    person-probability channel); ``quantized`` means 8-bit weights. ``imports`` says how the
    weights reach PyTorch: "yes" (``seglite import`` / ``import_tflite``), "native" (a
    seglite checkpoint) or "no" (not a DeepLab). ``packaged`` entries ship inside ``seglite/assets/`` (any format, e.g. a
    ``.safetensors`` checkpoint); ``url`` may be empty for files that cannot be downloaded.
    """

    name: str
    filename: str
    url: str
    sha256: str
    size: int
    labels: str
    input_size: tuple[int, int]
    quantized: bool
    output: str
    description: str
    source: str
    license: str
    packaged: bool = False
    imports: str = "yes"
    # what --accurate means for this model where the default preset does not fit it: a
    # model that already runs on enlarged frames needs smaller tile scales
    accurate_scales: tuple[float, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(LABEL_SETS[self.labels])

    @property
    def format(self) -> str:
        """File format from the suffix: "tflite", "safetensors", "onnx"..."""
        return Path(self.filename).suffix.lstrip(".").lower()


@dataclass(frozen=True)
class ResolvedModel:
    """A model file on disk, the zoo entry it matches (or None), and where it was found.

    ``origin`` is one of "path", "packaged", "model_dir", "cache", "download".
    """

    path: Path
    entry: ModelEntry | None
    origin: str = "path"

    @property
    def name(self) -> str:
        return self.entry.name if self.entry else self.path.stem


ZOO: dict[str, ModelEntry] = {}


def register(entry: ModelEntry, *, replace: bool = False) -> ModelEntry:
    """Add an entry to the zoo (e.g. a trained checkpoint shipped in the package assets)."""
    if entry.name in ZOO and not replace:
        raise OptionError(f"model {entry.name!r} is already in the zoo; pass replace=True")
    if entry.labels not in LABEL_SETS:
        raise OptionError(
            f"model {entry.name!r}: unknown label set {entry.labels!r}; "
            f"known: {', '.join(LABEL_SETS)}"
        )
    if entry.output not in ("logits", "argmax", "sigmoid"):
        raise OptionError(f"model {entry.name!r}: output must be 'logits', 'argmax' or 'sigmoid'")
    if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
        raise OptionError(f"model {entry.name!r}: sha256 must be 64 lowercase hex digits")
    if entry.size <= 0 or len(entry.input_size) != 2:
        raise OptionError(f"model {entry.name!r}: size and input_size (h, w) must be set")
    ZOO[entry.name] = entry
    return entry


for _e in (
    ModelEntry(
        name="deeplabv3",
        filename="deeplabv3_257_mv_gpu.tflite",
        url=f"{_GCS}/gpu/deeplabv3_257_mv_gpu.tflite",
        sha256="68a539782c2c6a72f8aac3724600124a85ed977162b44e84cbae5db717c933c6",
        size=2779264,
        labels="voc21",
        input_size=(257, 257),
        quantized=False,
        output="logits",
        description="DeepLab v3 MobileNetV2 starter model, PASCAL VOC (the default, shipped)",
        source="tensorflow/tflite-support",
        license="Apache-2.0",
        packaged=True,
    ),
    ModelEntry(
        name="deeplabv3-metadata",
        filename="lite-model_deeplabv3_1_metadata_2.tflite",
        url=f"{_GCS}/task_library/image_segmentation/android/"
        "lite-model_deeplabv3_1_metadata_2.tflite",
        sha256="9711334db2b01d5894feb8ed0f5cb3e97d125b8d229f8d8692f625801818f5ef",
        size=2780051,
        labels="voc21",
        input_size=(257, 257),
        quantized=False,
        output="logits",
        description="the starter model plus TFLite metadata (normalization, label map)",
        source="TF Hub tensorflow",
        license="Apache-2.0",
    ),
    ModelEntry(
        name="coral-pascal",
        filename="deeplabv3_mnv2_pascal_quant.tflite",
        url=f"{_CORAL}/deeplabv3_mnv2_pascal_quant.tflite",
        sha256="350af47fd346ea6d74b58833a351f583ba860e9806ec5bd292ff8d8f1f249398",
        size=2193224,
        labels="voc21",
        input_size=(513, 513),
        quantized=True,
        output="argmax",
        description="Coral DeepLab v3 MobileNetV2, uint8, PASCAL VOC (CPU build)",
        source="google-coral/test_data",
        license="Apache-2.0",
    ),
    ModelEntry(
        name="coral-pascal-dm05",
        filename="deeplabv3_mnv2_dm05_pascal_quant.tflite",
        url=f"{_CORAL}/deeplabv3_mnv2_dm05_pascal_quant.tflite",
        sha256="0470d2a782aa54eeeb99d32e7b6b3fb7722905c7c4f5d26bd957ec861366d48b",
        size=760904,
        labels="voc21",
        input_size=(513, 513),
        quantized=True,
        output="argmax",
        description="Coral DeepLab v3 MobileNetV2 depth 0.5, uint8, PASCAL VOC (CPU build)",
        source="google-coral/test_data",
        license="Apache-2.0",
    ),
    ModelEntry(
        name="cityscapes",
        filename="deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",
        url=f"{_CORAL}/deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",
        sha256="322fe29945cb1693f426952f2a330ab67ea5678545ddee6f2548e0cfd0ca03e5",
        size=2157328,
        labels="cityscapes19",
        input_size=(513, 513),
        quantized=True,
        output="argmax",
        description="Coral DeepLab MobileNet-EdgeTPU slim, uint8, Cityscapes trainIds (CPU)",
        source="google-coral/test_data",
        license="Apache-2.0",
    ),
    ModelEntry(
        name="ade20k",
        filename="lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite",
        url=f"{_TFHUB}/sayakpaul/lite-model/deeplabv3-mobilenetv2-ade20k/1/default/1"
        "?lite-format=tflite",
        sha256="9476784566f88bf0bdc3169f0012fb7d08857b325811d8c1aaf5ada1c0d4e4f9",
        size=2415896,
        labels="ade20k151",
        input_size=(513, 513),
        quantized=True,
        output="logits",
        description="DeepLab v3 MobileNetV2, ADE20K 150 classes + other, int8 weights "
        "(community model; sha256 not tied to the URL by public evidence)",
        source="TF Hub sayakpaul",
        license="Apache-2.0",
    ),
    ModelEntry(
        name="coco-voc-fp16",
        filename="mobilenetv2-dm05-coco_fp16_brainypi.tflite",
        url=f"{_TFHUB}/sayakpaul/lite-model/mobilenetv2-dm05-coco/fp16/1?lite-format=tflite",
        sha256="b9af23f4748eb581d12b402233a8d18febd622e447733e32a2a13a6c9537b0f9",
        size=1429942,
        labels="voc21",
        input_size=(513, 513),
        quantized=False,
        output="logits",
        description="DeepLab v3 MobileNetV2 depth 0.5 (COCO->VOC), fp16 weights; extra test "
        "model copied from brainypi/BrainyPi-AI-Examples, TF Hub URL not verified",
        source="third-party copy",
        license="unverified",
    ),
    ModelEntry(
        name="camvid",
        filename="camvid_edgetpu_cityscapes.safetensors",
        url="",
        sha256="597ae396889f31ed21691c1c6cf4ccc785338b8a1c3448ae042635dd50c07413",
        size=12801486,
        labels="camvid11",
        input_size=(537, 713),
        quantized=False,
        output="logits",
        description="three DeepLab v3 MobileNet-EdgeTPU 0.75 with a stride-4 logit refiner, "
        "fine-tuned here with seeds 0, 1, 2 on all 468 CamVid train + val frames from the "
        "zoo's Cityscapes model, its classifier mapped to CamVid's 11 classes "
        "(configs/camvid_cityscapes.toml), their logits averaged (seglite ensemble, float16 "
        "weights); runs on frames enlarged 1.5x (a 480x360 frame fills its 713x537 input); "
        "PyTorch checkpoint, needs seglite[torch]",
        source="seglite (trained from the Cityscapes model)",
        license="CC BY-NC 4.0 (CamVid training data: research use)",
        packaged=True,
        imports="native",
        accurate_scales=_CAMVID_ACCURATE,
    ),
    ModelEntry(
        name="camvid-lite",
        filename="camvid_edgetpu_cityscapes_int8.tflite",
        url="",
        sha256="d68120e41548c17820f1a3b7baf71add17c152dec2ecb72f5bb1de640e68deba",
        size=2520714,
        labels="camvid11",
        input_size=(537, 713),
        quantized=True,
        output="logits",
        description="the first of camvid's three models (seed 0) exported to TFLite, int8 "
        "(calibrated on 100 CamVid train frames), output stride 8, metadata: no torch needed",
        source="seglite (seglite export of camvid's seed 0)",
        license="CC BY-NC 4.0 (CamVid training data: research use)",
        packaged=True,
        imports="no",
        accurate_scales=_CAMVID_ACCURATE,
    ),
    ModelEntry(
        name="ade20k-mlperf",
        filename="deeplabv3_mnv2_ade20k_uint8.tflite",
        url="https://github.com/mlcommons/mobile_models/raw/main/v0_7/tflite/"
        "deeplabv3_mnv2_ade20k_uint8.tflite",
        sha256="2d58c681d81b5e181816b81cc815b82edf3daad905b4d7d35afade80aee93b5f",
        size=2348952,
        labels="ade20k32",
        input_size=(512, 512),
        quantized=True,
        output="argmax",
        description="MLPerf Mobile v0.7 DeepLab v3+ MobileNetV2 (decoder), uint8, ADE20K "
        "top-31 classes + other (from deeplabv3_mnv2_ade20k_train_2018_12_03)",
        source="mlcommons/mobile_models",
        license="Apache-2.0",
    ),
    ModelEntry(
        name="coral-pascal-257",
        filename="deeplabv3_mnv2_pascal_257_os8_quant.tflite",
        url="https://github.com/freedomtan/deeplabv3_tflite_for_nnapi_delegate/raw/"
        "3c58d64718a7/pascal_voc_2012/deeplabv3_mnv2_pascal_257_os8_quant.tflite",
        sha256="27d985c43c4f0abeea2b85153ce7455457239b73ee0b1aca658290d91ac387bc",
        size=2183440,
        labels="voc21",
        input_size=(257, 257),
        quantized=True,
        output="argmax",
        description="the coral-pascal weights (deeplabv3_mnv2_pascal_train_aug_8bit) at "
        "257x257, output stride 8, uint8",
        source="freedomtan/deeplabv3_tflite_for_nnapi_delegate",
        license="BSD-3-Clause",
    ),
    ModelEntry(
        name="selfie",
        filename="selfie_segmentation.tflite",
        url="https://github.com/google-ai-edge/mediapipe/raw/63e679d99ca4/mediapipe/"
        "modules/selfie_segmentation/selfie_segmentation.tflite",
        sha256="8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27",
        size=249024,
        labels="person2",
        input_size=(256, 256),
        quantized=False,
        output="sigmoid",
        description="MediaPipe Selfie Segmentation (general): person probability, for "
        "background effects; not a DeepLab (shipped)",
        source="google-ai-edge/mediapipe",
        license="Apache-2.0",
        packaged=True,
        imports="no",
    ),
    ModelEntry(
        name="selfie-landscape",
        filename="selfie_segmentation_landscape.tflite",
        url="https://github.com/google-ai-edge/mediapipe/raw/63e679d99ca4/mediapipe/"
        "modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        sha256="4aafe6223bb8dac6fac8ca8ed56852870a33051ef3f6238822d282a109962894",
        size=249792,
        labels="person2",
        input_size=(144, 256),
        quantized=False,
        output="sigmoid",
        description="MediaPipe Selfie Segmentation for 144x256 landscape frames; faster (shipped)",
        source="google-ai-edge/mediapipe",
        license="Apache-2.0",
        packaged=True,
        imports="no",
    ),
):
    register(_e)
del _e


# --- where files live ------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$SEGLITE_CACHE_DIR``, else ``$XDG_CACHE_HOME/seglite``, else ``~/.cache/seglite``."""
    if d := os.environ.get("SEGLITE_CACHE_DIR"):
        return Path(d).expanduser()
    if d := os.environ.get("XDG_CACHE_HOME"):
        return Path(d).expanduser() / "seglite"
    return Path.home() / ".cache" / "seglite"


def model_dirs() -> list[Path]:
    """The folders named by ``$SEGLITE_MODEL_DIR`` (``os.pathsep``-separated), in order."""
    value = os.environ.get("SEGLITE_MODEL_DIR", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def packaged_path(entry: ModelEntry) -> Path | None:
    """The file shipped in ``seglite/assets`` for a packaged entry, if it is there."""
    if not entry.packaged:
        return None
    path = ASSETS / entry.filename
    return path if path.is_file() else None


def url_for(entry: ModelEntry, mirror: str | None = None) -> str:
    """The download URL: the official one, or ``<mirror>/<filename>``.

    ``mirror`` (default ``$SEGLITE_ZOO_MIRROR``) is a base URL or a local folder holding the
    zoo files under their file names: a flat mirror works for every host, TF Hub included.
    """
    mirror = mirror if mirror is not None else os.environ.get("SEGLITE_ZOO_MIRROR", "")
    if not mirror:
        return entry.url
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return f"{mirror.rstrip('/')}/{entry.filename}"


_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256_once(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so each file is hashed once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a model file, hashed once per process (by path, size and mtime)."""
    return _sha256_once(Path(path))


def _verified(path: Path, entry: ModelEntry) -> bool:
    return path.stat().st_size == entry.size and _sha256_once(path) == entry.sha256


def entry_for_file(path: str | os.PathLike) -> ModelEntry | None:
    """The zoo entry whose file this is: size first (free), sha256 only on a size match."""
    path = Path(path)
    size = path.stat().st_size
    candidates = [e for e in ZOO.values() if e.size == size]
    if not candidates:
        return None
    digest = _sha256_once(path)
    return next((e for e in candidates if e.sha256 == digest), None)


def _get_entry(name: str) -> ModelEntry:
    try:
        return ZOO[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name.lower(), list(ZOO), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ModelNotFoundError(
            f"unknown model {name!r}: not a file and not a zoo name; {hint}known: {', '.join(ZOO)}"
        ) from None


def find_local(entry: ModelEntry) -> tuple[Path, str] | None:
    """The verified local file for an entry and its origin, without downloading anything.

    Raises ``ModelError`` when the model dir holds a file of that name with the wrong sha256:
    the user put it there, so silently downloading another copy would hide their mistake.
    """
    if (path := packaged_path(entry)) is not None:
        return path, "packaged"
    for folder in model_dirs():
        path = folder / entry.filename
        if path.is_file():
            if not _verified(path, entry):
                raise ModelError(
                    f"{path} (in $SEGLITE_MODEL_DIR) is not the expected file for model "
                    f"{entry.name!r}: sha256 differs from {entry.sha256[:12]}...; "
                    f"replace it with the file from {entry.url or entry.source} or remove it"
                )
            return path, "model_dir"
    path = cache_dir() / entry.filename
    if path.is_file() and _verified(path, entry):
        return path, "cache"
    return None


def _offline() -> bool:
    return os.environ.get("SEGLITE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def resolve(
    model: str | os.PathLike | None = None,
    *,
    mirror: str | None = None,
    progress: bool = True,
    timeout: float = 30,
) -> ResolvedModel:
    """Find (or download) the file for a zoo name or path; see the module docstring."""
    if model is None:
        model = DEFAULT_MODEL
    as_path = Path(model).expanduser()
    if as_path.is_file():
        return ResolvedModel(as_path, entry_for_file(as_path), "path")
    if not isinstance(model, str) or "/" in model or os.sep in model or as_path.suffix:
        raise ModelNotFoundError(
            f"model file {model} does not exist; give an existing file or a zoo name "
            f"({', '.join(ZOO)})"
        )
    entry = _get_entry(model)
    if (found := find_local(entry)) is not None:
        return ResolvedModel(found[0], entry, found[1])

    dest = cache_dir() / entry.filename
    url = url_for(entry, mirror)
    if not url:
        raise ModelNotFoundError(
            f"model {entry.name!r} ({entry.filename}) is not installed and has no download "
            f"URL; place it in $SEGLITE_MODEL_DIR"
        )
    if _offline():
        raise ModelNotFoundError(
            f"model {entry.name!r} is not available locally and SEGLITE_OFFLINE=1 forbids "
            f"downloading it; place {entry.filename} in $SEGLITE_MODEL_DIR or unset "
            f"SEGLITE_OFFLINE"
        )
    from .download import download  # http and tqdm: only when something is downloaded

    dest.unlink(missing_ok=True)  # a cached file that failed its checksum
    download(url, dest, entry.sha256, size=entry.size, progress=progress, timeout=timeout)
    return ResolvedModel(dest, entry, "download")


def list_models() -> list[dict[str, object]]:
    """One row per zoo model for ``seglite models``: printable values, nothing downloaded."""
    rows: list[dict[str, object]] = []
    for e in ZOO.values():
        try:
            local = find_local(e) is not None
        except ModelError:
            local = False
        rows.append(
            {
                "name": e.name,
                "size_mb": round(e.size / 1e6, 1),
                "input": f"{e.input_size[0]}x{e.input_size[1]}",
                "classes": e.num_classes,
                "labels": e.labels,
                "quantized": "yes" if e.quantized else "no",
                "output": e.output,
                "imports to PyTorch": e.imports,
                "source": e.source,
                "local": "yes" if local else "no",
            }
        )
    return rows
