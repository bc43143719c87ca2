"""Every DeepLab file in the zoo imports by structure and computes its graph's function.

Parity is measured against LiteRT on real photos (``seglite.models.tflite_parity``); the
quantized graphs are compared with the quantized interpreter, on photos of the kind each
model was trained for. ``benchmarks/import_parity.py`` prints the full table over all
golden and example photos, out-of-domain ones included.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, GOLDEN, NOT_IN_REPO, model_file
from PIL import Image

torch = pytest.importorskip("torch")

from seglite.errors import ModelError, OptionError  # noqa: E402
from seglite.models import deeplab, describe, import_tflite  # noqa: E402
from seglite.models.tflite_import import _load, read_structure  # noqa: E402
from seglite.models.tflite_parity import parity  # noqa: E402
from seglite.models.tflite_structure import scope_path  # noqa: E402

VOC = GOLDEN / "segmentation_input_rotation0.jpg"
STREET = GOLDEN / "cityscapes_segmentation.bmp"
BIRD = GOLDEN / "bird_segmentation.bmp"
CAT = EXAMPLES / "chelsea.jpg"

# zoo name: (expected architecture, photos, float graph?)
MODELS = {
    "deeplabv3": (dict(version="v3", backbone="mobilenet_v2", depth_multiplier=0.5,
                       output_stride=8, num_classes=21), (VOC, CAT), True),
    "coco-voc-fp16": (dict(version="v3", depth_multiplier=0.5, output_stride=8,
                           num_classes=21), (VOC, CAT), True),
    "coral-pascal": (dict(depth_multiplier=1.0, output_stride=16, num_classes=21), (VOC, CAT), False),
    "coral-pascal-dm05": (dict(depth_multiplier=0.5, output_stride=16), (VOC, CAT), False),
    "coral-pascal-257": (dict(depth_multiplier=1.0, output_stride=8, upsampling="asymmetric"),
                         (VOC, BIRD), False),
    "cityscapes": (dict(backbone="mobilenet_edgetpu", depth_multiplier=0.75, output_stride=16,
                        aspp_channels=128, num_classes=19), (STREET, CAT), False),
    "ade20k": (dict(version="v3+", output_stride=8, num_classes=151, decoder_separable=True),
               (VOC, CAT), False),
    "ade20k-mlperf": (dict(version="v3+", output_stride=16, num_classes=32, padding="tf_same",
                           upsampling="asymmetric", decoder_separable=True), (VOC, STREET), False),
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def photo(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# coco-voc-fp16 (the one fp16 file) is not redistributable: it runs where a copy is in the
# model dir (benchmarks/import_parity.py covers it), and is not collected in a clean clone.
IN_REACH = [n for n in MODELS if n not in NOT_IN_REPO or model_file.available(n)]


@pytest.mark.parametrize("name", IN_REACH)
def test_import_infers_the_architecture_and_matches_litert(name):
    expected, photos, is_float = MODELS[name]
    path = model_file(name)
    model, info = import_tflite(path)
    cfg = info["config"]
    assert {k: cfg.get(k) for k in expected} == expected
    assert cfg["atrous_rates"] == [] and cfg["image_pooling"]  # the mobile ASPP-lite
    for result, image in zip(parity(model, path, [photo(p) for p in photos]), photos):
        print(f"{name} {image.name}: {result}")
        assert result["classes"] >= 2  # a real scene, not one class everywhere
        if is_float:
            assert result["agreement"] >= 0.999
            assert result["max_diff"] < 1e-3 * result["logit_range"]
        else:  # float activations vs 8-bit ones: masks differ along borders only
            assert result["agreement"] >= 0.985


def test_mobilenet_edgetpu_counts_match_the_cityscapes_file():
    path = model_file("cityscapes")
    units, structure = read_structure(path)
    model, info = import_tflite(path)
    backbone = [n for w, n in structure.assign.items() if w.startswith("backbone.")]
    convs = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    # Same convolutions: weights one for one; our params add BN scale + shift per channel.
    assert sum(c.weight.numel() for c in convs) == sum(n.weight.size for n in backbone) == 1_677_032
    assert sum(c.out_channels for c in convs) == 15_064
    n_params = sum(p.numel() for p in model.backbone.parameters())
    assert n_params == 1_677_032 + 2 * 15_064 == 1_707_160
    # Multiply-adds at 513x513: ours (describe) equal the graph's convs, part by part.
    d = describe(model, (513, 513))
    assert d["parts"]["backbone"]["macs"] == sum(n.macs for n in backbone)
    assert d["macs"] == info["graph_macs"]
    assert round(d["parts"]["backbone"]["macs"] / 1e9, 2) == 4.10


def test_names_only_cross_check_the_structure():
    assert scope_path("MobilenetV2/expanded_conv_16/project/weights_quant/FakeQuant") == (
        "backbone.blocks.16.project"
    )
    assert scope_path("MobilenetEdgeTPU/Conv_1/Conv2D_Fold;MobilenetEdgeTPU/Conv_1/x") == (
        "backbone.last"
    )
    assert scope_path("decoder/decoder_conv1_pointwise/weights") == "decoder.fuse.conv2.pointwise"
    assert scope_path("std.constant41") is None  # anonymous (MLIR converter): no opinion
    # The MLPerf graph keeps its scopes: every one agrees with the structure found.
    _, structure = read_structure(model_file("ade20k-mlperf"))
    named = {w: scope_path(n.names[0]) for w, n in structure.assign.items()}
    assert sum(v is not None for v in named.values()) >= 60
    assert all(v in (None, w) for w, v in named.items())


def test_strict_checks_refuse_a_model_that_differs():
    path = model_file("deeplabv3")
    _, structure = read_structure(path)
    at16 = deeplab(**dict(structure.config, output_stride=16))  # dilations differ
    with pytest.raises(
        ModelError, match="blocks.6.depthwise does not match the model: stride 1 vs 2"
    ) as err:
        _load(at16, structure, path)
    assert "\n" not in str(err.value)
    relu = deeplab(**dict(structure.config, backbone="mobilenet_v2"))
    relu.backbone.stem[-1] = torch.nn.ReLU()  # the graph clamps at 6
    with pytest.raises(ModelError, match="activation relu6 vs relu"):
        _load(relu, structure, path)


def test_imagenet_backbone_start():
    model = deeplab(version="v3+", backbone="mobilenet_v2", num_classes=11,
                    backbone_weights="imagenet")  # fmt: skip
    assert (
        "imagenet" in model.pretrained_from and "51 convolutions" in model.pretrained_from
    )  # all but the 1280 conv, logits
    # The stem is the classifier's, dequantized; the head is fresh (He init, no bias).
    from seglite.models.tflite_graph import read_graph

    graph = read_graph(model_file("mobilenet_v2_1.0_224_quant.tflite"))
    stem = graph.constant(graph.ops[0].inputs[1]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(model.backbone.stem.conv.weight.detach().numpy(), stem)
    assert float(model.backbone.stem.bn.bias.abs().sum()) > 0
    assert float(model.head.project.bn.bias.abs().sum()) == 0
    with pytest.raises(OptionError, match="depth_multiplier=1.0"):
        deeplab(backbone="mobilenet_v2", depth_multiplier=0.5, backbone_weights="imagenet")
    with pytest.raises(OptionError, match="no 'imagenet' weights for backbone resnet50"):
        deeplab(backbone="resnet50", backbone_weights="imagenet")


def test_import_command_writes_a_checkpoint_train_can_start_from(tmp_path, capsys):
    from seglite.cli import main
    from seglite.models import load_checkpoint

    out = tmp_path / "mlperf.safetensors"
    assert main(["import", "coral-pascal-257", "--out", str(out), "--image", str(VOC)]) == 0
    text = capsys.readouterr().out
    assert "DeepLab v3, mobilenet_v2 depth 1, output stride 8" in text
    assert "parity vs LiteRT on segmentation_input_rotation0.jpg: argmax agreement 99." in text
    model = load_checkpoint(out)
    assert model.config["upsampling"] == "asymmetric" and model.config["labels"] == "voc21"
    assert model.checkpoint_metadata["seglite.imported_from"] == "coral-pascal-257"
    assert main(["import", "selfie", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "not a DeepLab" in capsys.readouterr().err


def test_simulated_activation_rounding_follows_the_quantized_graph():
    """Rounding the float import's activations to the graph's uint8 grids brings it closer
    to the quantized interpreter on a photo outside the model's domain (where the float
    import disagrees most), and the hooks leave the model as it was."""
    path = model_file("cityscapes")
    model, _ = import_tflite(path)
    image = [photo(EXAMPLES / "astronaut.jpg")]
    before = parity(model, path, image)[0]
    simulated = parity(model, path, image, simulate_quantization=True)[0]
    after = parity(model, path, image)[0]
    assert simulated["agreement"] > before["agreement"] + 0.02
    assert simulated["confident_agreement"] >= simulated["agreement"]
    assert after == before  # no hook left behind
