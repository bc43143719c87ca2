"""The DeepLab family builds, trains and switches output stride; counts match the papers."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from seglite.errors import OptionError  # noqa: E402
from seglite.models import (  # noqa: E402
    BACKBONES,
    VERSIONS,
    count_params,
    deeplab,
    describe,
    format_description,
    set_output_stride,
    starter_model,
)
from seglite.models.backbones import MobileNetV2, ResNet, Xception65  # noqa: E402

SIZE = 65  # odd, k * 16 + 1, like DeepLab's crops


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors gain little from threads; one spares the cores shared with other runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def geometry(model: torch.nn.Module) -> list[tuple]:
    """Stride, dilation and padding of every convolution, in order."""
    return [
        (name, m.stride, m.dilation, m.padding)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d)
    ]


def test_import_seglite_does_not_import_torch():
    code = "import sys, seglite, seglite.labels; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("version", VERSIONS)
def test_forward_backward_and_output_stride_switch(version, backbone):
    torch.manual_seed(0)
    model = deeplab(version=version, backbone=backbone, num_classes=5, output_stride=16)
    params = {k: (v.data_ptr(), v.shape) for k, v in model.state_dict().items()}
    n_params = count_params(model)
    x = torch.randn(2, 3, SIZE, SIZE)

    for os_, feature in ((16, 5), (8, 9)):
        if os_ != 16:
            assert set_output_stride(model, os_) is model
        assert model.output_stride == os_ == model.config["output_stride"]
        feats = model.backbone(x)
        assert feats["out"].shape[-2:] == (feature, feature)  # ceil(65 / os)
        assert feats["low_level"].shape[-2:] == (17, 17)  # stride 4 at any output stride
        model.train()
        model.zero_grad()
        out = model(x)
        assert out.shape == (2, 5, SIZE, SIZE)
        torch.nn.functional.cross_entropy(out, torch.randint(0, 5, (2, SIZE, SIZE))).backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        first = next(model.backbone.parameters()).grad
        assert first.abs().sum() > 0  # the gradient reaches the stem

    # Switching moved stride into dilation, not into new or reshaped weights.
    assert count_params(model) == n_params
    assert {k: (v.data_ptr(), v.shape) for k, v in model.state_dict().items()} == params


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("version", VERSIONS)
def test_building_at_8_equals_switching_to_8(version, backbone):
    with torch.device("meta"):  # shapes only: no weight initialization cost
        direct = deeplab(version=version, backbone=backbone, output_stride=8)
        switched = deeplab(version=version, backbone=backbone, output_stride=16)
        switched.set_output_stride(8)
        assert geometry(direct) == geometry(switched)
        assert direct.config == switched.config
        # ... and the round trip 8 -> 32 -> 16 lands where a fresh OS-16 model starts.
        fresh16 = deeplab(version=version, backbone=backbone, output_stride=16)
        switched.set_output_stride(32).set_output_stride(16)
        assert geometry(switched) == geometry(fresh16)


def test_aspp_rates_scale_with_output_stride():
    with torch.device("meta"):
        model = deeplab(version="v3", backbone="resnet50", output_stride=16)
        assert model.head.rates == (6, 12, 18)
        dil = [b.conv.dilation[0] for b in model.head.branches[1:]]
        assert dil == [6, 12, 18]
        model.set_output_stride(8)
        assert model.head.rates == (12, 24, 36) and model.config["atrous_rates"] == [12, 24, 36]
        assert [b.conv.dilation[0] for b in model.head.branches[1:]] == [12, 24, 36]
        # multi-grid (1, 2, 4) on the last ResNet stage: rates 2, 4, 8 at OS 16
        model.set_output_stride(16)
        assert [b.conv2.conv.dilation[0] for b in model.backbone.layer4] == [2, 4, 8]
        v2 = deeplab(version="v2", backbone="resnet101", output_stride=8)
        assert v2.head.rates == (6, 12, 18, 24)  # DeepLab-v2's ASPP-L at OS 8
        v1 = deeplab(version="v1", backbone="resnet101", output_stride=8)
        assert v1.head.fc6.dilation == (12, 12)  # DeepLab-v1 LargeFOV


def test_backbone_parameter_counts_match_published_architectures():
    with torch.device("meta"):
        # MobileNetV2 1.0 ImageNet classifier without its FC layer: 2,223,872 params,
        # of which the final 320->1280 1x1 conv + BN (412,160) is not used by DeepLab.
        assert count_params(MobileNetV2(1.0)) == 2_223_872 - 412_160
        # torchvision/Keras ResNets without the 1000-way FC layer (2,049,000 params).
        assert count_params(ResNet("resnet101")) == 44_549_160 - 2_049_000
        assert count_params(ResNet("resnet50")) == 25_557_032 - 2_049_000
        # Xception-65 as in DeepLabv3+ (BN after depthwise and pointwise halves).
        assert count_params(Xception65()) == 37_867_312


def test_mobilenet_depth_05_channels_are_those_of_the_starter_model():
    with torch.device("meta"):
        net = MobileNetV2(0.5)
    outs = [net.stem.conv.out_channels] + [b.project.conv.out_channels for b in net.blocks]
    assert sorted(set(outs)) == [8, 12, 16, 32, 48, 80, 160]
    assert net.out_channels == 160 and net.low_level_channels == 72
    assert [b.hidden_channels for b in net.blocks][:3] == [16, 48, 72]


def test_describe_matches_deeplab_model_zoo_multiply_adds():
    # DeepLab's model zoo: MobileNetV2 (ASPP-lite, OS 16, 513x513) 2.75B multiply-adds,
    # depth 0.5: 0.88B. Ours counts convolutions only: within 2%.
    with torch.device("meta"):
        for depth, published in ((1.0, 2.75e9), (0.5, 0.88e9)):
            model = deeplab(version="v3", depth_multiplier=depth, atrous_rates=(), output_stride=16)
            info = describe(model, (513, 513))
            assert info["macs"] == pytest.approx(published, rel=0.02)
            assert info["feature_size"] == [33, 33]
            assert sum(p["params"] for p in info["parts"].values()) == info["params"]
            model.set_output_stride(8)
            at8 = describe(model, 513)
            assert at8["feature_size"] == [65, 65] and at8["params"] == info["params"]
            assert at8["macs"] > 3 * info["macs"]
        # DeepLabv3+ Xception-65, separable ASPP and decoder, OS 16, 513x513: 54.17B.
        xception = deeplab(version="v3+", backbone="xception65", output_stride=16)
        assert describe(xception, 513)["macs"] == pytest.approx(54.17e9, rel=0.01)
    text = format_description(info)
    assert "mobilenet_v2" in text and "total" in text


def test_describe_table_for_the_cli():
    from seglite.models.describe import describe_table

    starter = describe_table("starter")
    assert "input 257x257" in starter and "697,013" in starter
    one = describe_table("v3+ resnet101 os8")
    assert "DeepLabv3+ resnet101 OS 8" in one and "decoder" in one and "[65, 65]" in one
    assert "x0.5" in describe_table("v3:mobilenet_v2:x0.5")
    with pytest.raises(OptionError, match="unknown backbone"):
        describe_table("v3 vgg16")
    with pytest.raises(OptionError, match="cannot read architecture"):
        describe_table("   ")


def test_describe_reports_parts_of_v3plus():
    model = deeplab(version="v3+", backbone="mobilenet_v2", num_classes=11)
    info = describe(model, (97, 129))
    assert set(info["parts"]) == {"backbone", "head", "decoder", "classifier"}
    assert info["input_size"] == [97, 129] and info["feature_size"] == [7, 9]
    assert info["config"]["num_classes"] == 11
    assert next(model.parameters()).device.type == "cpu"  # the original is untouched


def test_starter_architecture():
    model = starter_model()
    cfg = model.config
    assert (cfg["version"], cfg["depth_multiplier"], cfg["output_stride"]) == ("v3", 0.5, 8)
    assert cfg["atrous_rates"] == [] and cfg["image_pooling"] and cfg["labels"] == "voc21"
    assert len(model.head.branches) == 1 and model.head.pooling is not None
    out = model.eval()(torch.zeros(1, 3, 33, 33))
    assert out.shape == (1, 21, 33, 33)


def test_reset_classifier_keeps_the_rest():
    model = deeplab(version="v3", backbone="mobilenet_v2", depth_multiplier=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_classifier(11, labels="camvid11")
    after = model.state_dict()
    assert after["classifier.weight"].shape == (11, 256, 1, 1)
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("classifier"))
    assert model.config["num_classes"] == 11 and model.config["labels"] == "camvid11"
    v2 = deeplab(version="v2", backbone="mobilenet_v2", num_classes=21).reset_classifier(3)
    assert v2(torch.zeros(2, 3, 33, 33)).shape == (2, 3, 33, 33)


def test_builder_names_are_forgiving():
    with torch.device("meta"):
        a = deeplab(version="DeepLabV3+", backbone="MobileNetV2")
        b = deeplab(version="v3plus", backbone="mobilenet-v2")
        assert a.config == b.config and a.config["version"] == "v3+"
        assert deeplab(backbone="ResNet-101").config["backbone"] == "resnet101"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"version": "v4"}, "unknown DeepLab version"),
        ({"backbone": "vgg16"}, "unknown backbone"),
        ({"output_stride": 12}, "output_stride must be 8, 16 or 32"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": True}, "num_classes"),
        ({"backbone": "resnet50", "depth_multiplier": 0.5}, "only applies to the mobilenet_v2"),
        ({"depth_multiplier": -1}, "depth_multiplier"),
        ({"version": "v3", "decoder_channels": 128}, "only applies to v3+"),
        ({"version": "v2", "image_pooling": False}, "only applies to v3 and v3+"),
        ({"multi_grid": (1, 2, 4)}, "only applies to resnet50, resnet101, xception65"),
        ({"backbone": "resnet50", "multi_grid": (1, 2)}, "exactly 3"),
        ({"atrous_rates": (6, 0, 18)}, "positive integers"),
        ({"version": "v1", "atrous_rates": (6, 12)}, "exactly 1"),
        ({"version": "v2", "atrous_rates": ()}, "at least 1"),
        ({"labels": "voc21", "num_classes": 11}, "has 21 classes"),
        ({"labels": ["a", "b"], "num_classes": 3}, "2 label names given for 3 classes"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_options_raise_one_line_option_errors(kwargs, words):
    with pytest.raises(OptionError) as err:
        deeplab(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_builder_is_keyword_only_and_output_stride_switch_is_validated():
    with pytest.raises(TypeError):
        deeplab("v3")  # type: ignore[misc]
    with torch.device("meta"):
        model = deeplab(version="v3")
    with pytest.raises(OptionError, match="output_stride must be 8, 16 or 32"):
        model.set_output_stride(4)


def test_mobilenet_edgetpu_counts():
    """Depth 1.0 at 224x224, output stride 32 (the ImageNet setting): 2.81M parameters and
    0.99 GMACs without the classifier; depth 0.75 is the Cityscapes file's backbone (its
    weights and multiply-adds are checked one for one in test_structural_import)."""
    from seglite.models import MobileNetEdgeTPU

    with torch.device("meta"):
        full = deeplab(version="v3", backbone="mobilenet_edgetpu", output_stride=32)
        assert count_params(full.backbone) == 2_810_432
        # the backbone alone: a whole DeepLab pads 224 to the aligned 225 (DeepLab.aligned_size)
        assert describe(full.backbone, (224, 224))["macs"] == 989_389_184
        slim = MobileNetEdgeTPU(0.75)
    assert count_params(slim) == 1_707_160 and slim.out_channels == 1280
    widths = [slim.stem.conv.out_channels] + [b.project.conv.out_channels for b in slim.blocks]
    assert sorted(set(widths)) == [16, 24, 40, 72, 120, 144]
    assert [b.depthwise is None for b in slim.blocks][:10] == [True] * 9 + [False]  # fused first
    assert slim.low_level_channels == 96 and not slim.blocks[13].use_residual
