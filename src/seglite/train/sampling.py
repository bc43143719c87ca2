"""What the loop trains on: augmented samples keyed for exact resume, the batch order of
every epoch, and SegNet's class weights."""

from __future__ import annotations

import numpy as np

from ..data import TrainTransform
from ..errors import OptionError
from .config import TrainConfig

PROBE_EPOCH = 2**31 - 1  # augmentation seed of the crops that unfold_bn measures on


class TrainSet:
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


def make_transform(
    cfg: TrainConfig, train_set, rarity: list[float] | None = None
) -> TrainTransform:
    """``rarity``: per-class weights for rare-class crops (median-frequency by default)."""
    if cfg.rare_class_crops > 0 and rarity is None:
        rarity = median_frequency_weights(train_set)
    return TrainTransform(
        crop_size=tuple(cfg.crop_size), scale_range=tuple(cfg.scale_range),
        ignore_index=train_set.ignore_index if train_set.ignore_index is not None else 255,
        flip=cfg.flip, jitter=cfg.jitter,
        focus=cfg.rare_class_crops, class_rarity=tuple(rarity or ()),
    )  # fmt: skip
