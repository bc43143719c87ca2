"""Training loop: schedule, config, exact resume (in process and after kill -9), DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402
from test_data import make_camvid  # noqa: E402

from seglite.errors import OptionError  # noqa: E402
from seglite.train import TrainConfig, TrainingError, load_config, poly_lr, train  # noqa: E402
from seglite.train.sampling import BatchSchedule, median_frequency_weights  # noqa: E402

TINY = {
    "dataset_kind": "camvid",
    "init": "scratch",
    "version": "v3",
    "depth_multiplier": 0.25,
    "decoder": False,
    "model_options": {"aspp_channels": 16, "atrous_rates": []},
    "crop_size": [33, 33],
    "scale_range": [0.75, 1.25],
    "batch_size": 2,
    "iterations": 4,
    "threads": 1,
    "val_every": 0,
    "log_every": 1,
    "checkpoint_every": 1,
    "warmup_iterations": 0,
    "lr": 0.02,
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}


@pytest.fixture(scope="module")
def camvid(tmp_path_factory) -> Path:
    return make_camvid(tmp_path_factory.mktemp("camvid"), n_train=6, n_val=2)


def tiny(root: Path, **kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, "dataset": str(root), **kw})


def weights(path: Path) -> dict:
    return load_file(str(path))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-6, msg=k)


def log_iters(run: Path) -> list[int]:
    recs = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return [r["iter"] for r in recs if "loss" in r]


def test_poly_schedule_with_warmup():
    cfg = TrainConfig(iterations=100, lr=0.01, lr_power=0.9, warmup_iterations=10)
    assert poly_lr(cfg, 0) == pytest.approx(0.001)
    assert poly_lr(cfg, 9) == pytest.approx(0.01)
    assert poly_lr(cfg, 50) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(cfg, 100) == 0.0


def test_batch_schedule_resumes_mid_epoch_and_splits_ranks():
    full = BatchSchedule(10, 3, seed=1, rank=0, world=1, start=0)
    it = iter(full)
    first = [next(it) for _ in range(8)]  # 3 batches per epoch: crosses two epochs
    late = iter(BatchSchedule(10, 3, seed=1, rank=0, world=1, start=5))
    assert [next(late) for _ in range(3)] == first[5:8]
    r0 = next(iter(BatchSchedule(10, 5, seed=0, rank=0, world=2, start=0)))
    r1 = next(iter(BatchSchedule(10, 5, seed=0, rank=1, world=2, start=0)))
    assert {k[0] for k in r0}.isdisjoint({k[0] for k in r1})
    assert len({k[0] for k in r0 + r1}) == 10
    with pytest.raises(OptionError, match="cannot fill one batch"):
        BatchSchedule(3, 4, seed=0, rank=0, world=1, start=0)


def test_config_file_tables_base_and_errors(tmp_path):
    (tmp_path / "base.toml").write_text(
        '[data]\ndataset = "cv"\ncrop_size = [65, 65]\n[optim]\nlr = 0.1\n'
    )
    (tmp_path / "v.toml").write_text('base = "base.toml"\n[optim]\nlr = 0.05\n')
    cfg = load_config(tmp_path / "v.toml", iterations=7)
    assert cfg.lr == 0.05 and cfg.crop_size == [65, 65] and cfg.iterations == 7
    assert cfg.dataset == str((tmp_path / "cv").resolve())
    # a dict-valued option written as an inline table is a value, not a group of keys
    (tmp_path / "opts.toml").write_text(
        'dataset = "cv"\nmodel_options = {aspp_channels = 16, atrous_rates = []}\n'
        '[model.class_map]\npedestrian = ["person"]\n'
    )
    cfg = load_config(tmp_path / "opts.toml")
    assert cfg.model_options == {"aspp_channels": 16, "atrous_rates": []}
    assert cfg.class_map == {"pedestrian": ["person"]}
    (tmp_path / "bad.toml").write_text("learning_rate = 1\n")
    with pytest.raises(OptionError, match="unknown training option"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(OptionError, match="output_stride"):
        TrainConfig(output_stride=12).validate()
    with pytest.raises(OptionError, match="freeze_bn"):
        TrainConfig(batch_size=1).validate()


def test_repo_recipe_loads():
    cfg = load_config(Path(__file__).parents[1] / "configs" / "camvid_mnv2_v3plus.toml")
    assert cfg.init == "starter" and cfg.decoder and cfg.output_stride == 16
    assert cfg.threads <= 2


def test_resume_in_process_is_exact(camvid, tmp_path):
    cfg = tiny(camvid, val_every=2)
    straight = train(cfg, tmp_path / "a", progress=False)
    assert straight["iteration"] == 4 and "val_os8" in straight
    part = train(cfg, tmp_path / "b", progress=False, stop_after=2)
    assert part["iteration"] == 2 and not (tmp_path / "b" / "final.safetensors").exists()
    train(cfg, tmp_path / "b", resume=True, progress=False)
    assert_same_weights(tmp_path / "a" / "final.safetensors", tmp_path / "b" / "final.safetensors")
    assert log_iters(tmp_path / "b") == [1, 2, 3, 4]
    assert (tmp_path / "b" / "curves.png").stat().st_size > 1000
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert {"val_os16", "val_os8"} <= res.keys()
    # the final file is a checkpoint the runtime can open, with its input size
    from seglite.runtime.torch import TorchBackend

    be = TorchBackend(tmp_path / "b" / "final.safetensors", num_threads=1)
    # 36x48, brought up to the next k x 8 + 1
    assert be.input_size == (41, 49) and be.output_stride == 8 and be.labels[0] == "sky"


def test_resume_guards(camvid, tmp_path):
    cfg = tiny(camvid, iterations=2)
    train(cfg, tmp_path / "r", progress=False, stop_after=1)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(cfg, tmp_path / "r", progress=False)
    with pytest.raises(TrainingError, match="lr"):
        train(cfg, tmp_path / "r", resume=True, overrides={"lr": 0.5}, progress=False)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(cfg, tmp_path / "none", resume=True, progress=False)
    # allowed: more iterations
    out = train(cfg, tmp_path / "r", resume=True, overrides={"iterations": 3}, progress=False)
    assert out["iteration"] == 3


def test_from_checkpoint_freeze_bn_and_accumulation(camvid, tmp_path):
    first = tiny(camvid, iterations=1, val_split="")
    train(first, tmp_path / "s", progress=False)
    ckpt = tmp_path / "s" / "final.safetensors"
    cfg = tiny(
        camvid,
        init=str(ckpt),
        freeze_bn=True,
        accum_steps=2,
        batch_size=1,
        iterations=2,
        val_split="",
    )
    train(cfg, tmp_path / "f", progress=False)
    before, after = weights(ckpt), weights(tmp_path / "f" / "final.safetensors")
    bn = [k for k in before if k.endswith("running_mean")]
    assert bn and all(torch.equal(before[k], after[k]) for k in bn)
    conv = [k for k in before if k.endswith("weight") and before[k].ndim == 4]
    assert any(not torch.equal(before[k], after[k]) for k in conv)


def test_freeze_encoder_bn_only(camvid, tmp_path):
    from seglite.train.batchnorm import frozen_bn_modules, set_train_mode
    from seglite.train.model_init import build_model

    cfg = tiny(
        camvid,
        version="v3+",
        model_options={"aspp_channels": 16, "atrous_rates": [], "decoder_channels": 16},
    )
    model = build_model(cfg.replace(freeze_bn="encoder"), 11, "camvid11")
    frozen = frozen_bn_modules(model, "encoder")
    decoder_bn = [m for m in model.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen and decoder_bn and not set(frozen) & set(decoder_bn)
    set_train_mode(model, "encoder")
    assert not any(m.training for m in frozen) and all(m.training for m in decoder_bn)
    with pytest.raises(OptionError, match="freeze_bn"):
        cfg.replace(freeze_bn="decoder")


def test_unfold_batchnorm_keeps_the_function(camvid, tmp_path):
    from seglite.train.batchnorm import frozen_bn_modules, unfold_batchnorm
    from seglite.train.model_init import build_model

    torch.manual_seed(0)
    model = build_model(tiny(camvid), 11, "camvid11").eval()
    x = torch.randn(4, 3, 33, 33)
    with torch.no_grad():
        before = model(x)
    assert unfold_batchnorm(model, [x[:2], x[2:]]) > 0
    with torch.no_grad():
        after = model(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    bn = model.backbone.stem.bn
    assert not torch.all(bn.running_var == 1) and unfold_batchnorm(model, [x]) == 0  # once
    assert len(frozen_bn_modules(model, "image_pooling")) == 1
    cfg = tiny(camvid, unfold_bn=True, freeze_bn="image_pooling", iterations=1, val_split="")
    assert train(cfg, tmp_path / "u", progress=False)["iteration"] == 1


def test_class_weights(camvid, tmp_path):
    from seglite.data import open_dataset

    w = median_frequency_weights(open_dataset(camvid, split="train"))
    assert len(w) == 11 and all(v >= 0 for v in w)
    cfg = tiny(camvid, iterations=1, class_weights="sqrt_median_frequency", val_split="")
    assert train(cfg, tmp_path / "w", progress=False)["iteration"] == 1
    with pytest.raises(OptionError, match="class_weights has 2 values"):
        train(tiny(camvid, class_weights=[1.0, 2.0]), tmp_path / "w2", progress=False)


def _cli(run: Path, camvid: Path, *extra: str) -> list[str]:
    cfg = json.dumps({**TINY, "dataset": str(camvid), "iterations": 16, "val_split": ""})
    (run.parent / "tiny.json").write_text(cfg)
    return [sys.executable, "-m", "seglite", "train", "--config", str(run.parent / "tiny.json"),
            "--out", str(run), "--no-progress", *extra]  # fmt: skip


def test_kill_9_then_resume_continues_from_last_checkpoint(camvid, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cli(run, camvid), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    state = run / "state.json"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["iteration"] >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["iteration"]
    assert 3 <= killed_at < 16
    done = subprocess.run(_cli(run, camvid, "--resume"), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(state.read_text())["iteration"] == 16
    assert log_iters(run) == list(range(1, 17))  # nothing lost, nothing twice
    assert not list((run / "ckpt").glob("*.tmp"))
    # and the result is exactly the uninterrupted run's
    ref = train(load_config(run / "config.json"), tmp_path / "ref", progress=False)
    assert ref["iteration"] == 16
    assert_same_weights(run / "final.safetensors", tmp_path / "ref" / "final.safetensors")


def test_ddp_two_gloo_processes(camvid, tmp_path):
    cfg = tmp_path / "ddp.json"
    cfg.write_text(json.dumps({**TINY, "dataset": str(camvid), "iterations": 3}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "seglite", "train", "--config", str(cfg), "--out", str(tmp_path / "ddp"), "--no-progress"]  # fmt: skip
    done = subprocess.run(
        cmd, env={**ENV, "SEGLITE_DEVICE": "cpu"}, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((tmp_path / "ddp" / "state.json").read_text())
    assert state["iteration"] == 3
    # 6 images, 2 processes x batch 2: one step per epoch (the remainder is dropped)
    assert state["epoch"] == pytest.approx(3.0)
    assert (tmp_path / "ddp" / "final.safetensors").is_file()


def test_val_limit_bounds_the_final_validation_too(camvid, tmp_path):
    train(tiny(camvid, val_limit=1, iterations=1), tmp_path / "r", progress=False)
    recs = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    finals = [r for r in recs if r.get("final")]
    assert len(finals) == 2 and all(r["val_images"] == 1 for r in finals)  # OS 16 and OS 8


def test_val_scale_validates_at_the_runtimes_size(camvid, tmp_path):
    from seglite.data import open_dataset
    from seglite.eval.native import evaluate_torch
    from seglite.models.checkpoint import load_checkpoint

    with pytest.raises(OptionError, match="val_scale"):
        tiny(camvid, val_scale=0)
    cfg = tiny(camvid, val_scale=1.5, iterations=1, val_every=1)
    train(cfg, tmp_path / "r", progress=False)
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    model = load_checkpoint(tmp_path / "r" / "final.safetensors")
    val = open_dataset(str(camvid), split="val", kind="camvid")
    miou = {
        s: evaluate_torch(model, val, scales=(s,), output_stride=8).summary(val.labels.names)[
            "miou"
        ]
        for s in (1.0, 1.5)
    }
    assert results["val_os8"]["miou"] == pytest.approx(miou[1.5])
    # --accurate for it means the preset's frame sizes (1.5x and 2x the frame), not tiles
    # at 1.5x and 2x of an input that already enlarges the frame 1.5x
    from seglite import Segmenter

    assert model.checkpoint_metadata["seglite.accurate_scales"] == [1.0, 1.3333]
    seg = Segmenter(tmp_path / "r" / "final.safetensors", accurate=True, num_threads=1)
    assert seg.options.scales == (1.0, 1.3333) and seg.options.flip
    recs = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert all(r["val_scale"] == 1.5 for r in recs if "val_miou" in r and not r.get("final"))
