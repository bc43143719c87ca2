"""The training loop: SGD + poly LR on DeepLab, resumable exactly, DDP-ready.

Exact resume without saving RNG state: the sample order of each epoch comes from
``DistributedSampler`` (seeded by seed + epoch), each sample's augmentation from
``(seed, epoch, rank, position)``, and the torch RNG (dropout) is reseeded from
``(seed, iteration)`` every step. So the state to save is the weights, the momentum
buffers and the iteration count; a resumed run replays the same batches.

Multi-process: launch with ``torchrun --nproc-per-node N -m seglite train ...``; the
environment variables torchrun sets switch on DistributedDataParallel (gloo on CPU,
nccl on CUDA). Rank 0 alone writes logs, checkpoints and evaluates.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import TrainTransform, open_dataset
from ..data.check import require_clean
from ..errors import OptionError, SegliteError
from .collapse import CollapseGuard
from .config import TrainConfig
from .state import (
    atomic_write_json,
    load_optimizer,
    prune_checkpoints,
    read_json,
    save_optimizer,
    truncate_log,
)

# Options a resumed run may change; everything else must match the run's config.json.
RESUMABLE_CHANGES = {
    "iterations", "threads", "workers", "checkpoint_every_s", "checkpoint_every",
    "keep_checkpoints", "val_every", "val_limit", "val_output_stride", "log_every",
}  # fmt: skip


PROBE_EPOCH = 2**31 - 1  # augmentation seed of the crops that unfold_bn measures on


class TrainingError(SegliteError):
    """A run directory that cannot be started or resumed as asked."""


# ---------------------------------------------------------------------------- data


class _TrainSet:
    """Maps (index, epoch, rank, position) keys to augmented tensors."""

    def __init__(self, dataset, transform: TrainTransform, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        import torch

        index, epoch, rank, pos = key
        rng = np.random.default_rng([self.seed, epoch, rank, pos])
        image, mask = self.dataset[index]
        x, y = self.transform(image, mask, rng)
        return torch.from_numpy(x), torch.from_numpy(y)


class BatchSchedule:
    """Micro-batches of keys for one rank, starting at micro-step ``start``.

    Epoch e is ``DistributedSampler(shuffle, seed, drop_last)`` with ``set_epoch(e)``,
    cut into ``batch_size`` chunks (the remainder is dropped).
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, rank: int, world: int, start: int):
        from torch.utils.data import DistributedSampler

        self.sampler = DistributedSampler(
            range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batch_size, self.rank, self.start = batch_size, rank, start
        self.per_epoch = len(self.sampler) // batch_size
        if self.per_epoch < 1:
            raise OptionError(
                f"{n} training images cannot fill one batch of {batch_size} on each of "
                f"{world} process(es)"
            )

    def __len__(self) -> int:
        return 1 << 40  # endless; the loop decides when to stop

    def __iter__(self):
        step = self.start
        while True:
            epoch, b = divmod(step, self.per_epoch)
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)
            for j in range(b, self.per_epoch):
                lo = j * self.batch_size
                yield [(order[p], epoch, self.rank, p) for p in range(lo, lo + self.batch_size)]
            step = (epoch + 1) * self.per_epoch


def median_frequency_weights(dataset) -> list[float]:
    """SegNet's class balancing: median(freq) / freq(c), freq over images containing c."""
    n = dataset.num_classes
    pixels, present = np.zeros(n), np.zeros(n)
    for i in range(len(dataset)):
        m = dataset.read_mask(i)
        counts = np.bincount(m.ravel(), minlength=max(n, int(m.max()) + 1))[:n]
        pixels += counts
        present += (counts > 0) * m.size
    freq = np.where(present > 0, pixels / np.maximum(present, 1), 0)
    med = float(np.median(freq[freq > 0]))
    return [float(round(med / f, 4)) if f > 0 else 0.0 for f in freq]


# ---------------------------------------------------------------------------- model


def build_model(cfg: TrainConfig, num_classes: int, labels):
    """The model to train, at ``cfg.output_stride``: imported starter weights, a
    checkpoint (classifier replaced if the classes differ) or random weights."""
    from ..models.deeplab import deeplab
    from ..models.pretrained import starter_model
    from ..models.registry import backbone_entry

    init = cfg.init
    if init == "starter" and not cfg.model_options:
        return starter_model(
            num_classes=num_classes, pretrained=True, decoder=cfg.decoder,
            output_stride=cfg.output_stride, labels=labels,
        )  # fmt: skip
    if init == "starter":  # e.g. a lighter decoder: build it, then import what fits
        return _starter_variant(cfg, num_classes, labels)
    if init == "scratch":
        kw: dict[str, Any] = dict(
            version=cfg.version, backbone=cfg.backbone, num_classes=num_classes,
            output_stride=cfg.output_stride, labels=labels,
        )  # fmt: skip
        if "depth_multiplier" in backbone_entry(kw["backbone"]).options:
            kw["depth_multiplier"] = cfg.depth_multiplier
        kw.update(cfg.model_options or {})
        try:
            return deeplab(**kw)
        except TypeError as exc:
            raise OptionError(f"model_options: {exc}") from None
    from ..models.checkpoint import load_checkpoint

    model = load_checkpoint(init)
    if model.num_classes != num_classes or model.config.get("labels") != labels:
        model.reset_classifier(num_classes, labels=labels)
    return model.set_output_stride(cfg.output_stride)


def _starter_variant(cfg: TrainConfig, num_classes: int, labels):
    """The starter architecture with ``cfg.model_options`` (e.g. ``decoder_separable``,
    ``decoder_channels``), its encoder initialized from the imported VOC weights."""
    from ..models.deeplab import deeplab
    from ..models.pretrained import starter_config, starter_model

    try:
        model = deeplab(
            **starter_config(
                version="v3+" if cfg.decoder else "v3", num_classes=num_classes,
                output_stride=cfg.output_stride, labels=labels, **cfg.model_options,
            )
        )  # fmt: skip
    except TypeError as exc:
        raise OptionError(f"model_options: {exc}") from None
    source = starter_model(pretrained=True).state_dict()
    own = model.state_dict()
    moved = {
        k: v for k, v in source.items()
        if not k.startswith("classifier.") and k in own and own[k].shape == v.shape
    }  # fmt: skip
    own.update(moved)
    model.load_state_dict(own)
    model.pretrained_from = f"starter ({len(moved)} tensors)"
    return model


def _transform(cfg: TrainConfig, train_set) -> TrainTransform:
    return TrainTransform(
        crop_size=tuple(cfg.crop_size), scale_range=tuple(cfg.scale_range),
        ignore_index=train_set.ignore_index if train_set.ignore_index is not None else 255,
        flip=cfg.flip, jitter=cfg.jitter,
    )  # fmt: skip


def _label_arg(dataset):
    key = dataset.labels.key
    from ..labels import LABEL_SETS

    return key if key in LABEL_SETS else list(dataset.labels.names)


def frozen_bn_modules(model, freeze_bn: bool | str) -> list:
    """The batch-norm layers ``freeze_bn`` keeps fixed: all (True), the backbone's and
    head's ("encoder"), or none.

    "encoder" is what an imported TFLite model needs: its batch norms were folded into the
    convolutions and imported as identities, so training them from batch statistics would
    replace the pretrained function by a different one (and the image-pooling branch's
    batch statistics over a handful of pooled vectors do not match its running averages)."""
    import torch

    bn = torch.nn.modules.batchnorm._BatchNorm
    if not freeze_bn:
        return []
    if freeze_bn == "image_pooling":
        return [m for n, m in model.head.named_modules() if "pooling" in n and isinstance(m, bn)]
    roots = [model] if freeze_bn is True else [model.backbone, model.head]
    return [m for r in roots for m in r.modules() if isinstance(m, bn)]


def unfold_batchnorm(model, batches) -> int:
    """Give the encoder's folded batch norms (running mean 0, variance 1: what a TFLite
    import yields) the mean and variance of their inputs over ``batches``, with gamma and
    beta rescaled so that the network computes exactly what it did. Returns how many.

    Training then starts from the pretrained function with batch norms that normalize, as
    in the original model, instead of batch statistics suddenly replacing identities."""
    import torch

    bns = [
        m for r in (model.backbone, model.head) for m in r.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
    ]  # fmt: skip
    sums: dict = {}

    def hook(mod, inp, out):
        x = inp[0].detach().transpose(0, 1).flatten(1).double()
        n, s1, s2 = sums.get(mod, (0, 0.0, 0.0))
        sums[mod] = (n + x.shape[1], s1 + x.sum(1), s2 + (x * x).sum(1))

    handles = [m.register_forward_hook(hook) for m in bns]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    with torch.no_grad():
        for m, (n, s1, s2) in sums.items():
            mean = (s1 / n).float()
            var = (s2 / n - (s1 / n) ** 2).clamp_min(0).float()
            scale = m.weight / torch.sqrt(m.running_var + m.eps)
            shift = m.bias - m.running_mean * scale
            m.weight.copy_(scale * torch.sqrt(var + m.eps))
            m.bias.copy_(shift + mean * scale)
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
    return len(sums)


def _set_train_mode(model, freeze_bn: bool | str) -> None:
    model.train()
    for m in frozen_bn_modules(model, freeze_bn):
        m.eval()


def _make_optimizer(model, cfg: TrainConfig):
    """SGD with momentum; weight decay on conv/linear weights only (not BN, not biases),
    as the DeepLab reference applies its L2 regularizer."""
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        momentum=cfg.momentum,
    )


def poly_lr(cfg: TrainConfig, it: int) -> float:
    """Learning rate for optimizer step ``it`` (0-based): linear warmup, then poly decay."""
    if cfg.warmup_iterations and it < cfg.warmup_iterations:
        return cfg.lr * (it + 1) / cfg.warmup_iterations
    return cfg.lr * max(0.0, 1.0 - it / cfg.iterations) ** cfg.lr_power


# ---------------------------------------------------------------------------- run dir


def _prepare_config(cfg: TrainConfig, out: Path, resume: bool, overrides: dict) -> TrainConfig:
    saved = out / "config.json"
    if not resume:
        if (out / "state.json").exists():
            raise TrainingError(
                f"{out} already holds a run: pass --resume to continue it, or another --out"
            )
        return cfg
    if not saved.is_file():
        raise TrainingError(f"{out}: nothing to resume (no config.json); start without --resume")
    old = TrainConfig.from_dict(read_json(saved))
    changes = {k: v for k, v in overrides.items() if v is not None and getattr(old, k) != v}
    bad = sorted(set(changes) - RESUMABLE_CHANGES)
    if bad:
        raise TrainingError(
            f"--resume keeps the run's config; these options differ from {saved}: "
            f"{', '.join(bad)} (allowed to change: {', '.join(sorted(RESUMABLE_CHANGES))})"
        )
    return old.replace(**changes)


class _Log:
    """JSONL records (one per line, flushed) and the PNG of the curves, rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path, self.enabled = out / "log.jsonl", enabled
        self.out = out

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self) -> None:
        if self.enabled:
            try:
                plot_curves(self.path, self.out / "curves.png")
            except ImportError:
                pass


def plot_curves(log_path: Path, png: Path) -> Path:
    """Loss (and learning rate) and validation mIoU against iterations, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(ln) for ln in Path(log_path).read_text().splitlines() if ln.strip()]
    tr = [r for r in recs if "loss" in r]
    va = [r for r in recs if "val_miou" in r]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    if tr:
        a1.plot([r["iter"] for r in tr], [r["loss"] for r in tr], lw=0.8, label="train loss")
        a1.set_yscale("log")
    a1.set_xlabel("iteration")
    a1.set_ylabel("cross-entropy")
    a1.grid(alpha=0.3)
    a1.legend(loc="upper right")
    for os_ in sorted({r.get("output_stride", 16) for r in va}):
        pts = [r for r in va if r.get("output_stride", 16) == os_]
        a2.plot(
            [r["iter"] for r in pts], [r["val_miou"] for r in pts], "o-", label=f"val mIoU OS {os_}"
        )
    a2.set_xlabel("iteration")
    a2.set_ylabel("mIoU (%)")
    a2.grid(alpha=0.3)
    if va:
        a2.legend(loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png)
    return png


# ---------------------------------------------------------------------------- train


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def train(
    cfg: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overrides: dict | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Train ``cfg`` into run dir ``out``; returns the final summary (rank 0).

    ``resume`` continues from ``out/state.json`` (the saved config wins; see
    ``RESUMABLE_CHANGES``). ``stop_after`` ends the call after that many optimizer
    steps in total, checkpointed, as a kill would (for tests and time-boxed sessions).
    """
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    out = Path(out)
    cfg = _prepare_config(cfg, out, resume, overrides or {})
    rank, world, local_rank = _dist_env()
    distributed = world > 1
    use_cuda = torch.cuda.is_available() and os.environ.get("SEGLITE_DEVICE", "") != "cpu"
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    torch.set_num_threads(cfg.threads)
    main = rank == 0

    if not cfg.dataset:
        raise OptionError("no dataset: set dataset in the config or pass --dataset DIR")
    kw = dict(kind=cfg.dataset_kind, labels=cfg.labels)
    splits = [s for s in (cfg.train_split, cfg.val_split) if s]
    require_clean(cfg.dataset, splits=splits, **kw)  # refuse labels that would train wrong
    train_set = open_dataset(cfg.dataset, split=cfg.train_split, **kw)
    val_set = open_dataset(cfg.dataset, split=cfg.val_split, **kw) if cfg.val_split else None
    ignore = train_set.ignore_index if train_set.ignore_index is not None else -100
    input_size = cfg.input_size
    if input_size is None:
        probe = val_set or train_set
        h, w = probe.read_mask(0).shape
        input_size = [int(h), int(w)]

    torch.manual_seed(cfg.seed)  # new layers' initialization, the same in every process
    model = build_model(cfg, train_set.num_classes, _label_arg(train_set)).to(device)
    for m in frozen_bn_modules(model, cfg.freeze_bn):
        for p in m.parameters():
            p.requires_grad_(False)
    optimizer = _make_optimizer(model, cfg)
    names = {p: n for n, p in model.named_parameters()}
    resuming = resume and (out / "state.json").is_file()

    weight = None
    if isinstance(cfg.class_weights, str):  # one of CLASS_WEIGHTINGS (validated)
        w = median_frequency_weights(train_set)
        if cfg.class_weights.startswith("sqrt"):
            w = [v**0.5 for v in w]
        weight = torch.tensor(w, dtype=torch.float32)
    elif cfg.class_weights is not None:
        if len(cfg.class_weights) != train_set.num_classes:
            raise OptionError(
                f"class_weights has {len(cfg.class_weights)} values for {train_set.num_classes} classes"
            )
        weight = torch.tensor(cfg.class_weights, dtype=torch.float32)
    if weight is not None:
        weight = weight.to(device)

    log = _Log(out, main)
    start, state = 0, {}
    if cfg.unfold_bn and not resuming:
        # statistics from crops of a pseudo-epoch the run never reaches, so its own batch
        # stream is untouched; DDP then broadcasts rank 0's result
        probe = _TrainSet(train_set, _transform(cfg, train_set), cfg.seed)
        n = min(len(train_set), 32)
        keys = [(i, PROBE_EPOCH, rank, i) for i in range(n)]
        batches = [
            torch.stack([probe[k][0] for k in keys[j : j + cfg.batch_size]]).to(device)
            for j in range(0, n, cfg.batch_size)
        ]
        unfold_batchnorm(model, batches)
    if resuming:
        from safetensors.torch import load_file

        state = read_json(out / "state.json")
        start = int(state["iteration"])
        model.load_state_dict(load_file(str(out / state["model"]), device=str(device)))
        load_optimizer(optimizer, names, out / state["optim"])
        if main:
            truncate_log(log.path, start)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", cfg.to_dict())

    ddp = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)

    transform = _transform(cfg, train_set)
    schedule = BatchSchedule(
        len(train_set), cfg.batch_size, seed=cfg.seed, rank=rank, world=world,
        start=start * cfg.accum_steps,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(
        _TrainSet(train_set, transform, cfg.seed), batch_sampler=schedule,
        num_workers=cfg.workers, persistent_workers=False,
    )  # fmt: skip

    stop = {"flag": False}

    def _on_term(signum, frame):  # finish the step, checkpoint, leave
        stop["flag"] = True

    old_handler = None
    if main and threading_is_main():
        old_handler = signal.signal(signal.SIGTERM, _on_term)

    elapsed0 = float(state.get("elapsed_s", 0.0))
    t_start = time.monotonic()
    last_ckpt = time.monotonic()
    val_history = list(state.get("val_history", []))

    def checkpoint(it: int) -> None:
        nonlocal last_ckpt
        if not main:
            return
        from ..models.checkpoint import save_checkpoint

        ck = out / "ckpt"
        model_path, optim_path = (
            ck / f"model-{it:07d}.safetensors",
            ck / f"optim-{it:07d}.safetensors",
        )
        save_checkpoint(
            model, model_path, extra_metadata=_metadata(cfg, it, input_size, val_history)
        )
        save_optimizer(optimizer, names, optim_path)
        atomic_write_json(
            out / "state.json",
            {
                "iteration": it,
                "model": str(model_path.relative_to(out)),
                "optim": str(optim_path.relative_to(out)),
                "epoch": it * cfg.accum_steps / schedule.per_epoch,
                "elapsed_s": round(elapsed0 + time.monotonic() - t_start, 1),
                "val_history": val_history,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        keep = sorted({int(p.stem.rsplit("-", 1)[1]) for p in ck.glob("model-*.safetensors")})
        prune_checkpoints(ck, set(keep[-max(1, cfg.keep_checkpoints) :]))
        last_ckpt = time.monotonic()

    guard = CollapseGuard(val_set.labels.names if val_set is not None else [])

    def validate(it: int, output_stride: int, limit: int | None) -> dict | None:
        if not main or val_set is None:
            return None
        from ..eval.native import evaluate_torch

        subset = val_set.subset(limit)
        t0 = time.monotonic()
        cm = evaluate_torch(model, subset, output_stride=output_stride)
        summary = cm.summary(val_set.labels.names)
        rec = {
            "iter": it, "val_miou": summary["miou"], "val_pixel_acc": summary["pixel_acc"],
            "output_stride": output_stride, "val_images": len(subset),
            "val_s": round(time.monotonic() - t0, 1),
        }  # fmt: skip
        warning = guard.update(cm.matrix)  # one class everywhere, common classes at IoU 0
        log.write({**rec, "per_class_iou": summary["per_class_iou"], "collapse": warning})
        if warning:
            print(f"seglite train: iteration {it}: {warning}", file=sys.stderr)
            if bar is not None:
                bar.set_postfix_str(warning.split(";")[0], refresh=False)
        val_history.append(rec)
        log.plot()
        _set_train_mode(model, cfg.freeze_bn)
        return {**summary, **rec}

    bar = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.iterations, initial=start, unit="it", dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 60.0, desc="train",
        )  # fmt: skip

    _set_train_mode(model, cfg.freeze_bn)
    batches = iter(loader)
    it = start
    loss_sum, loss_n, t_log = 0.0, 0, time.monotonic()
    end = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
    try:
        while it < end:
            torch.manual_seed(cfg.seed * 1_000_003 + it)
            lr = poly_lr(cfg, it)
            for g in optimizer.param_groups:
                g["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            for micro in range(cfg.accum_steps):
                x, y = next(batches)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                sync = micro == cfg.accum_steps - 1 or not distributed
                ctx = ddp.no_sync() if not sync else contextlib.nullcontext()
                with ctx:
                    logits = ddp(x)
                    if (y != ignore).any():
                        loss = F.cross_entropy(logits, y, weight=weight, ignore_index=ignore)
                    else:  # an all-ignore crop: no signal, but keep DDP's graph complete
                        loss = logits.sum() * 0.0
                    (loss / cfg.accum_steps).backward()
                loss_sum += float(loss.detach())
                loss_n += 1
            optimizer.step()
            it += 1
            if not math.isfinite(loss_sum):
                raise TrainingError(f"loss became {loss_sum} at iteration {it}: lower the lr")
            if bar is not None:
                bar.update(1)
            if it % cfg.log_every == 0 or it == end:
                stats = torch.tensor([loss_sum, float(loss_n)], dtype=torch.float64)
                if distributed:
                    dist.all_reduce(stats)
                now = time.monotonic()
                rec = {
                    "iter": it, "loss": round(float(stats[0] / max(stats[1], 1)), 5),
                    "lr": round(lr, 7), "epoch": round(it * cfg.accum_steps / schedule.per_epoch, 3),
                    "s_per_iter": round((now - t_log) / max(1, loss_n // cfg.accum_steps), 3),
                    "elapsed_s": round(elapsed0 + now - t_start, 1),
                }  # fmt: skip
                log.write(rec)
                if bar is not None:
                    bar.set_postfix(loss=rec["loss"], lr=f"{lr:.2e}", refresh=False)
                loss_sum, loss_n, t_log = 0.0, 0, now
            did_val = False
            if cfg.val_every and it % cfg.val_every == 0 and it < cfg.iterations:
                validate(it, cfg.val_output_stride, cfg.val_limit)
                did_val = True
            if distributed:
                dist.barrier()
            due_time = time.monotonic() - last_ckpt >= cfg.checkpoint_every_s
            due_iter = cfg.checkpoint_every and it % cfg.checkpoint_every == 0
            if due_time or due_iter or did_val or stop["flag"] or it == end:
                checkpoint(it)
            if stop["flag"]:
                break
    except KeyboardInterrupt:
        checkpoint(it)
        raise
    finally:
        if bar is not None:
            bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)

    result: dict[str, Any] = {"iteration": it, "run_dir": str(out)}
    if it >= cfg.iterations and main:
        result.update(finish(model, cfg, out, val_set, it, input_size, val_history, log))
    if distributed:
        dist.barrier()
    return result


def finish(model, cfg, out: Path, val_set, it: int, input_size, val_history, log: _Log) -> dict:
    """Full validation at OS 16 and OS 8, ``final.safetensors`` and ``results.json``."""
    from ..eval.native import evaluate_torch
    from ..models.checkpoint import save_checkpoint

    results: dict[str, Any] = {"iteration": it}
    if val_set is not None:
        val_set = val_set.subset(cfg.val_limit)  # --val-limit bounds the last check too
        for os_ in sorted({cfg.output_stride, 8}, reverse=True):
            cm = evaluate_torch(model, val_set, output_stride=os_, progress=True)
            s = cm.summary(val_set.labels.names)
            results[f"val_os{os_}"] = s
            rec = {
                "iter": it,
                "val_miou": s["miou"],
                "output_stride": os_,
                "val_images": len(val_set),
                "final": True,
            }
            log.write({**rec, "per_class_iou": s["per_class_iou"]})
            val_history.append(rec)
    # The runtime infers at the stride that scored best here (DeepLab's usual answer: 8).
    best = max(
        (8, cfg.output_stride), key=lambda o: (results.get(f"val_os{o}") or {}).get("miou") or -1
    )
    final = out / "final.safetensors"
    meta = _metadata(cfg, it, input_size, val_history, eval_output_stride=best)
    save_checkpoint(model, final, extra_metadata=meta)
    atomic_write_json(out / "results.json", results)
    log.plot()
    results["final"] = str(final)
    return results


def _metadata(
    cfg: TrainConfig, it: int, input_size, val_history, eval_output_stride: int = 8
) -> dict:
    return {
        "seglite.input_size": list(input_size),
        "seglite.eval_output_stride": eval_output_stride,
        "seglite.train": {
            "iteration": it, "iterations": cfg.iterations, "dataset": Path(cfg.dataset).name,
            "train_split": cfg.train_split, "crop_size": cfg.crop_size,
            "val": val_history[-1] if val_history else None,
        },
    }  # fmt: skip


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
