"""How batches reach the model: the handout's DataLoader, or the whole data set resident on the device.

Both give the training loop the same thing: normalized float batches ``(images, targets)`` on the
device, with the handout's augmentation (random 32x32 crop of the image zero-padded by 4, random
horizontal flip) and normalization (``course_config.CIFAR10_MEAN/STD``), and evaluation batches
``(images, targets or None, count)`` in Id order.

* ``LoaderPipeline`` (baseline): ``tools.dataset.CIFAR10`` -> PIL image -> torchvision transforms in
  DataLoader worker processes -> host-to-device copy, batch by batch. On a GPU the CPU side (decoding,
  PIL crops, ToTensor) is the bottleneck.
* ``ResidentPipeline`` (fast): the uint8 images are copied to the device once, zero-padded once
  (N, 3, 40, 40); each batch is one gather that crops and flips every image at its own random offset,
  then one normalization. No worker processes, no per-image Python, no copies per batch.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torchvision.transforms as transforms
from torch.utils.data import DataLoader

import course_config
from solutions.course_data import CourseData
from solutions.recipes import Recipe

PAD = 4
SIZE = 32


def handout_transforms() -> tuple[transforms.Compose, transforms.Compose]:
    """(train, eval) transforms of Lab 3: RandomCrop(32, padding=4), flip, ToTensor, Normalize."""
    normalize = [transforms.ToTensor(), transforms.Normalize(course_config.CIFAR10_MEAN, course_config.CIFAR10_STD)]
    return (transforms.Compose([transforms.RandomCrop(SIZE, padding=PAD), transforms.RandomHorizontalFlip(),
                                *normalize]),
            transforms.Compose(normalize))


class LoaderPipeline:
    """The handout's pipeline: DataLoader over PIL images with torchvision transforms."""

    def __init__(self, data: CourseData, recipe: Recipe, device: torch.device, workers: int):
        transform_train, transform_eval = handout_transforms()
        data.train.transform = transform_train
        data.val.transform = data.test.transform = transform_eval
        self.device = device
        pin = device.type == "cuda"
        self.train_loader = DataLoader(data.train, batch_size=recipe.batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=pin, persistent_workers=workers > 0)
        self.eval_loaders = {
            split: DataLoader(dataset, batch_size=recipe.eval_batch_size, shuffle=False, num_workers=workers,
                              pin_memory=pin, persistent_workers=workers > 0 and split == "val")
            for split, dataset in (("val", data.val), ("test", data.test))}
        self.steps_per_epoch = len(self.train_loader)
        self.images_per_epoch = len(data.train)

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, targets in self.train_loader:
            yield images.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
        for batch in self.eval_loaders[split]:
            images, targets = batch if isinstance(batch, (list, tuple)) else (batch, None)
            yield (images.to(self.device, non_blocking=True),
                   None if targets is None else targets.to(self.device, non_blocking=True), len(images))


class ResidentPipeline:
    """The whole data set on the device as uint8; crop, flip and normalization done there, a batch at a time.

    ``static_shapes`` (for torch.compile) drops the last partial training batch and zero-pads the last
    evaluation batch to the full size, so the compiled graph never sees a new shape."""

    def __init__(self, data: CourseData, recipe: Recipe, device: torch.device, static_shapes: bool = True):
        self.device = device
        to_device = lambda array: torch.from_numpy(array).to(device).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        self.train_padded = torch.nn.functional.pad(to_device(data.train.data), (PAD, PAD, PAD, PAD))
        self.train_targets = torch.from_numpy(data.train.targets).to(device)
        self.eval_images = {"val": to_device(data.val.data), "test": to_device(data.test.data)}
        self.eval_targets = {"val": torch.from_numpy(data.val.targets).to(device), "test": None}
        self.mean = torch.tensor(course_config.CIFAR10_MEAN, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(course_config.CIFAR10_STD, device=device).view(1, 3, 1, 1) * 255
        n = len(self.train_targets)
        self.batch_size = min(recipe.batch_size, n)
        self.steps_per_epoch = n // self.batch_size if static_shapes else math.ceil(n / self.batch_size)
        self.images_per_epoch = min(n, self.steps_per_epoch * self.batch_size)
        self.eval_batch_size = recipe.eval_batch_size
        self.static_shapes = static_shapes
        self._offsets = torch.arange(SIZE, device=device)
        self._channels = torch.arange(3, device=device).view(1, 3, 1, 1)

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return (images_uint8.float() - self.mean) / self.std

    def augment(self, index: torch.Tensor) -> torch.Tensor:
        """The images ``index`` cropped at random offsets 0..8 of the padded image and flipped with p = 0.5."""
        count = len(index)
        top = torch.randint(0, 2 * PAD + 1, (count, 1), device=self.device)
        left = torch.randint(0, 2 * PAD + 1, (count, 1), device=self.device)
        flip = torch.rand(count, 1, device=self.device) < 0.5
        rows = top + self._offsets                                                  # (B, 32)
        cols = left + torch.where(flip, SIZE - 1 - self._offsets, self._offsets)    # mirrored columns if flipped
        return self.train_padded[index.view(-1, 1, 1, 1), self._channels,
                                 rows[:, None, :, None], cols[:, None, None, :]]

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.train_targets), device=self.device)
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield self.normalize(self.augment(index)), self.train_targets[index]

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
        images, targets = self.eval_images[split], self.eval_targets[split]
        size = min(self.eval_batch_size, len(images))
        for start in range(0, len(images), size):
            batch = images[start:start + size]
            count = len(batch)
            if self.static_shapes and count < size:
                batch = torch.cat([batch, batch.new_zeros((size - count, *batch.shape[1:]))])
            yield self.normalize(batch), None if targets is None else targets[start:start + size], count


def make_pipeline(data: CourseData, recipe: Recipe, device: torch.device, workers: int):
    if recipe.pipeline == "baseline":
        return LoaderPipeline(data, recipe, device, workers)
    return ResidentPipeline(data, recipe, device)
