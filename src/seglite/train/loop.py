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
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..data import open_dataset
from ..data.check import require_clean
from ..errors import OptionError, SegliteError
from .batchnorm import frozen_bn_modules, set_train_mode, unfold_batchnorm
from .collapse import CollapseGuard
from .config import TrainConfig
from .log import TrainLog
from .model_init import build_model, label_arg
from .optim import make_optimizer, poly_lr
from .sampling import PROBE_EPOCH, BatchSchedule, TrainSet, make_transform, median_frequency_weights
from .state import (
    atomic_write_json,
    load_optimizer,
    prune_checkpoints,
    read_json,
    save_optimizer,
    truncate_log,
)
from .step import autocast, segmentation_loss, to_layout

# Options a resumed run may change; everything else must match the run's config.json.
RESUMABLE_CHANGES = {
    "iterations", "threads", "workers", "checkpoint_every_s", "checkpoint_every",
    "keep_checkpoints", "val_every", "val_limit", "val_output_stride", "val_scale", "log_every",
    "precision", "channels_last",
}  # fmt: skip


class TrainingError(SegliteError):
    """A run directory that cannot be started or resumed as asked."""


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
        # the first image's size, brought up to the next k x 8 + 1, where the model runs
        # without padding and its final upsampling is exact (DeepLab.aligned_size)
        from ..models.deeplab import aligned_up

        probe = val_set or train_set
        input_size = [aligned_up(int(n), 8) for n in probe.read_mask(0).shape]

    torch.manual_seed(cfg.seed)  # new layers' initialization, the same in every process
    model = build_model(cfg, train_set.num_classes, label_arg(train_set)).to(device)
    model = to_layout(model, cfg.channels_last)
    for m in frozen_bn_modules(model, cfg.freeze_bn):
        for p in m.parameters():
            p.requires_grad_(False)
    optimizer = make_optimizer(model, cfg)
    names = {p: n for n, p in model.named_parameters()}
    resuming = resume and (out / "state.json").is_file()

    weight = None
    rarity = None  # median-frequency weights: class weights and rare-class crops share them
    if isinstance(cfg.class_weights, str) or cfg.rare_class_crops > 0:
        rarity = median_frequency_weights(train_set)
    if isinstance(cfg.class_weights, str):  # one of CLASS_WEIGHTINGS (validated)
        w = rarity
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

    teachers = None
    if cfg.teachers:
        from .distill import Teachers

        teachers = Teachers(
            cfg.teachers, num_classes=train_set.num_classes, output_stride=cfg.output_stride,
            temperature=cfg.distill_temperature, device=device,
        )  # fmt: skip

    log = TrainLog(out, main)
    start, state = 0, {}
    if cfg.unfold_bn and not resuming:
        # statistics from crops of a pseudo-epoch the run never reaches, so its own batch
        # stream is untouched; DDP then broadcasts rank 0's result
        probe = TrainSet(train_set, make_transform(cfg, train_set, rarity), cfg.seed)
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

    transform = make_transform(cfg, train_set, rarity)
    schedule = BatchSchedule(
        len(train_set), cfg.batch_size, seed=cfg.seed, rank=rank, world=world,
        start=start * cfg.accum_steps,
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(
        TrainSet(train_set, transform, cfg.seed), batch_sampler=schedule,
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
        cm = evaluate_torch(model, subset, scales=(cfg.val_scale,), output_stride=output_stride)
        summary = cm.summary(val_set.labels.names)
        rec = {
            "iter": it, "val_miou": summary["miou"], "val_pixel_acc": summary["pixel_acc"],
            "output_stride": output_stride, "val_scale": cfg.val_scale, "val_images": len(subset),
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
        set_train_mode(model, cfg.freeze_bn)
        return {**summary, **rec}

    bar = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.iterations, initial=start, unit="it", dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 60.0, desc="train",
        )  # fmt: skip

    set_train_mode(model, cfg.freeze_bn)
    batches = iter(loader)
    it = start
    loss_sum, loss_n, t_log = 0.0, 0, time.monotonic()
    end = cfg.iterations if stop_after is None else min(cfg.iterations, stop_after)
    try:
        while it < end:
            torch.manual_seed(cfg.seed * 1_000_003 + it)
            lr = poly_lr(cfg, it)
            for g in optimizer.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)
            optimizer.zero_grad(set_to_none=True)
            for micro in range(cfg.accum_steps):
                x, y = next(batches)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                sync = micro == cfg.accum_steps - 1 or not distributed
                ctx = ddp.no_sync() if not sync else contextlib.nullcontext()
                with ctx:
                    with autocast(cfg.precision, device):
                        logits = ddp(to_layout(x, cfg.channels_last))
                    loss = segmentation_loss(logits, y, weight=weight, ignore_index=ignore,
                                             loss=cfg.loss, ohem_threshold=cfg.ohem_threshold,
                                             ohem_min_kept=cfg.ohem_min_kept)  # fmt: skip
                    if teachers is not None:
                        loss = mix_distillation(loss, logits, x, y, teachers, cfg, ignore, device)
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


def mix_distillation(ce, logits, x, y, teachers, cfg: TrainConfig, ignore: int, device):
    """(1 - w) * cross-entropy + w * the distillation loss towards the teachers."""
    from .distill import distillation_loss

    probs = teachers.probabilities(
        to_layout(x, cfg.channels_last), lambda: autocast(cfg.precision, device)
    )
    kd = distillation_loss(logits, probs, y != ignore, cfg.distill_temperature)
    return (1 - cfg.distill_weight) * ce + cfg.distill_weight * kd


def finish(model, cfg, out: Path, val_set, it: int, input_size, val_history, log: TrainLog) -> dict:
    """Full validation at OS 16 and OS 8, ``final.safetensors`` and ``results.json``."""
    from ..eval.native import evaluate_torch
    from ..models.checkpoint import save_checkpoint

    results: dict[str, Any] = {"iteration": it}
    if val_set is not None:
        val_set = val_set.subset(cfg.val_limit)  # --val-limit bounds the last check too
        for os_ in sorted({cfg.output_stride, 8}, reverse=True):
            cm = evaluate_torch(
                model, val_set, scales=(cfg.val_scale,), output_stride=os_, progress=True
            )
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
    meta = {
        "seglite.input_size": list(input_size),
        "seglite.eval_output_stride": eval_output_stride,
        "seglite.train": {
            "iteration": it, "iterations": cfg.iterations, "dataset": Path(cfg.dataset).name,
            "train_split": cfg.train_split, "crop_size": cfg.crop_size, "seed": cfg.seed,
            "val": val_history[-1] if val_history else None,
        },
    }  # fmt: skip
    if cfg.val_scale != 1:
        meta["seglite.accurate_scales"] = accurate_scales_for(cfg.val_scale)
    return meta


def accurate_scales_for(val_scale: float) -> list[float]:
    """``--accurate``'s tiles for a model that runs on frames enlarged ``val_scale`` times:
    the preset's frame sizes (1.5x and 2x the frame), not 1.5x and 2x of an input that
    already enlarges (for 1.5: tiles at 1x and 4/3 of the input, as the camvid entries)."""
    from ..segmenter import ACCURATE_SCALES

    return [round(s / val_scale, 4) for s in ACCURATE_SCALES]


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
