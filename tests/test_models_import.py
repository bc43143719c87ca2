"""Official TFLite weights imported into the PyTorch DeepLab: parity with LiteRT itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EXAMPLES, GOLDEN, MODEL_DIR, model_file
from PIL import Image

torch = pytest.importorskip("torch")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from seglite.errors import ModelError  # noqa: E402
from seglite.models import (  # noqa: E402
    calibrate_batchnorm,
    count_params,
    import_tflite,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    starter_model,
)

STARTER = model_file("deeplabv3_257_mv_gpu.tflite")  # the packaged copy
IMAGES = [
    GOLDEN / "segmentation_input_rotation0.jpg",
    EXAMPLES / "astronaut.jpg",
    EXAMPLES / "chelsea.jpg",
]
CORAL = {
    "deeplabv3_mnv2_pascal_quant.tflite": 1.0,
    "deeplabv3_mnv2_dm05_pascal_quant.tflite": 0.5,
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors gain little from threads; one spares the cores shared with other runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rgb(path, size: int) -> np.ndarray:
    """A plain PIL bilinear resize to size x size, uint8 HWC."""
    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def normalized(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.float32) - 127.5) / 127.5)[None]  # NHWC float32


def run_torch(model, nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(nhwc).permute(0, 3, 1, 2))
    return out.permute(0, 2, 3, 1).numpy()  # NHWC like LiteRT


def run_litert(interpreter: Interpreter, array: np.ndarray) -> np.ndarray:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], array)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def imported():
    return import_tflite(STARTER)


@pytest.fixture(scope="module")
def interpreter():
    it = Interpreter(str(STARTER), num_threads=2)
    it.allocate_tensors()
    return it


def test_import_reads_the_architecture_from_the_graph(imported):
    model, info = imported
    cfg = info["config"]
    assert cfg["version"] == "v3" and cfg["backbone"] == "mobilenet_v2"
    assert cfg["depth_multiplier"] == 0.5 and cfg["output_stride"] == 8
    assert cfg["atrous_rates"] == [] and cfg["image_pooling"] is True  # ASPP-lite
    assert cfg["num_classes"] == 21 and cfg["labels"] == "voc21" and cfg["align_corners"]
    assert info["input_size"] == [257, 257] and info["weights"] == "float32"
    assert info["tensors"] == 55  # every CONV_2D / DEPTHWISE_CONV_2D of the graph
    assert not model.training


@pytest.mark.parametrize("image", IMAGES, ids=lambda p: p.stem)
def test_parity_with_litert(imported, interpreter, image):
    model, _ = imported
    x = normalized(rgb(image, 257))
    ref = run_litert(interpreter, x)
    ours = run_torch(model, x)
    assert ours.shape == ref.shape == (1, 257, 257, 21)
    logit_range = float(ref.max() - ref.min())
    max_diff = float(np.abs(ours - ref).max())
    agreement = float((ours.argmax(-1) == ref.argmax(-1)).mean())
    print(f"{image.name}: max |diff| {max_diff:.2e} over range {logit_range:.1f}, {agreement:.4%}")
    assert max_diff < 1e-3 * logit_range
    assert agreement >= 0.999
    assert len(np.unique(ref.argmax(-1))) >= 2  # a real scene, not all background


def test_matches_task_library_golden_mask(imported):
    model, _ = imported
    x = normalized(rgb(GOLDEN / "segmentation_input_rotation0.jpg", 257))
    mask = run_torch(model, x)[0].argmax(-1)
    golden = np.asarray(Image.open(GOLDEN / "segmentation_golden_rotation0.png")) // 10
    assert (mask == golden).mean() >= 0.99  # the Task Library's own tolerance


def test_metadata_twin_imports_the_same_weights(imported):
    model, _ = imported
    twin, info = import_tflite(MODEL_DIR / "lite-model_deeplabv3_1_metadata_2.tflite")
    assert info["config"] == model.config
    a, b = model.state_dict(), twin.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", CORAL)
def test_coral_quantized_models_import_dequantized(name):
    path = MODEL_DIR / name
    model, info = import_tflite(path)
    cfg = info["config"]
    assert cfg["depth_multiplier"] == CORAL[name] and cfg["output_stride"] == 16
    assert cfg["atrous_rates"] == [] and cfg["num_classes"] == 21
    assert info["weights"] == "uint8" and info["input_size"] == [513, 513]
    scale, zero = info["input_quantization"]
    it = Interpreter(str(path), num_threads=2)
    it.allocate_tensors()
    for image in IMAGES[:2]:
        pixels = rgb(image, 513)
        ref = run_litert(it, pixels[None])[0]  # uint8 in, ArgMax out
        # Same input the quantized graph sees: (q - 128) / 128.
        x = ((pixels.astype(np.float32) - zero) * scale)[None]
        agreement = float((run_torch(model, x)[0].argmax(-1) == ref).mean())
        print(f"{name} {image.name}: argmax agreement {agreement:.4%}")
        # Float weights vs 8-bit activations: masks differ only along object borders.
        assert agreement >= 0.98


def test_graphs_that_are_not_deeplabs_are_refused_in_one_line():
    for name, words in (
        ("mobilenet_v2_1.0_224_quant.tflite", "not a DeepLab graph"),  # an ImageNet classifier
    ):
        with pytest.raises(ModelError, match=words) as err:
            import_tflite(MODEL_DIR / name)
        assert "\n" not in str(err.value)


def test_bad_files_raise_model_error(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not a TFLite model"):
        import_tflite(junk)
    with pytest.raises(ModelError, match="cannot read"):
        import_tflite(tmp_path / "missing.tflite")


def test_checkpoint_round_trip(imported, tmp_path):
    model, _ = imported
    path = save_checkpoint(model, tmp_path / "starter.safetensors", {"dataset": "voc2012"})
    assert [p.name for p in tmp_path.iterdir()] == ["starter.safetensors"]  # no temp left
    meta = read_checkpoint_metadata(path)
    assert json.loads(meta["seglite.config"]) == model.config
    assert meta["dataset"] == "voc2012"
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    assert loaded.import_info["source"] == "deeplabv3_257_mv_gpu.tflite"
    assert json.loads(meta["seglite.preprocess"])["mean"] == 127.5
    assert loaded.checkpoint_metadata["seglite.input_size"] == [257, 257]
    assert all(p.requires_grad and p.device.type == "cpu" for p in loaded.parameters())
    x = normalized(rgb(IMAGES[1], 129))
    a, b = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    np.testing.assert_allclose(run_torch(loaded, x), run_torch(model, x), rtol=0, atol=1e-4)


def test_checkpoint_errors(imported, tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelError, match="not a seglite checkpoint"):
        load_checkpoint(plain)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_checkpoint(corrupt)
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    # weights of one architecture under the config of another
    model, _ = imported
    wrong = tmp_path / "wrong.safetensors"
    cfg = dict(model.config, depth_multiplier=1.0)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(wrong), metadata={"seglite.config": json.dumps(cfg)})
    with pytest.raises(ModelError, match="do not fit the stored config"):
        load_checkpoint(wrong)


def test_starter_model_for_camvid_keeps_all_but_the_classifier(imported):
    voc, _ = imported
    camvid = starter_model(num_classes=11, pretrained=STARTER, labels="camvid11")
    a, b = voc.state_dict(), camvid.state_dict()
    assert b["classifier.weight"].shape == (11, 256, 1, 1)
    kept = [k for k in a if not k.startswith("classifier.")]
    assert kept and all(torch.equal(a[k], b[k]) for k in kept)
    assert camvid.config["labels"] == "camvid11" and camvid.config["num_classes"] == 11
    camvid.train()
    out = camvid(torch.randn(2, 3, 65, 97))
    assert out.shape == (2, 11, 65, 97)


def test_starter_model_with_decoder_on_the_imported_encoder(imported, tmp_path):
    voc, _ = imported
    ckpt = save_checkpoint(voc, tmp_path / "voc.safetensors")
    plus = starter_model(num_classes=11, pretrained=ckpt, decoder=True, output_stride=16)
    assert plus.config["version"] == "v3+" and plus.output_stride == 16
    a, b = voc.state_dict(), plus.state_dict()
    encoder = [k for k in a if k.startswith(("backbone.", "head."))]
    assert all(torch.equal(a[k], b[k]) for k in encoder)
    assert plus.decoder is not None and plus.decoder.low_level.conv.in_channels == 72
    out = plus.eval()(torch.zeros(1, 3, 65, 65))
    assert out.shape == (1, 11, 65, 65)
    light = starter_model(num_classes=11, pretrained=ckpt, decoder=True, decoder_separable=True)
    assert light.config["decoder_separable"] and count_params(light) < count_params(plus)
    assert all(torch.equal(a[k], light.state_dict()[k]) for k in encoder)


def test_starter_model_default_weights_are_the_packaged_file(imported):
    voc, _ = imported
    packaged = starter_model(pretrained=True)
    a, b = voc.state_dict(), packaged.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_calibrate_batchnorm_keeps_the_function_and_gives_real_statistics():
    model = starter_model(pretrained=STARTER)  # its own copy: the fixture stays untouched
    batch = torch.from_numpy(np.concatenate([normalized(rgb(p, 129)) for p in IMAGES])).permute(
        0, 3, 1, 2
    )
    with torch.no_grad():
        before = model.eval()(batch)
    calibrate_batchnorm(model, [batch])
    stem_bn = model.backbone.stem.bn
    conv_out = model.backbone.stem.conv(batch)
    assert torch.allclose(stem_bn.running_mean, conv_out.mean((0, 2, 3)), atol=1e-4)
    with torch.no_grad():
        after = model.eval()(batch)
        assert (after - before).abs().max() < 1e-3
        # Train-mode batch norm on the calibration batch now computes the same function.
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.eval()
        trained = model(batch)
    assert (trained.argmax(1) == before.argmax(1)).float().mean() > 0.99


def test_starter_model_refuses_weights_of_another_architecture():
    with pytest.raises(ModelError, match="not the starter architecture"):
        starter_model(pretrained=MODEL_DIR / "deeplabv3_mnv2_pascal_quant.tflite")  # depth 1.0
    with pytest.raises(ModelError, match=".tflite or .safetensors"):
        starter_model(pretrained=MODEL_DIR / "deeplabv3_labelmap.txt")
    # Coral's depth-0.5 model has the starter's layers (trained at OS 16): it fits.
    coral = starter_model(pretrained=MODEL_DIR / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    assert coral.output_stride == 8 and coral.config["depth_multiplier"] == 0.5
