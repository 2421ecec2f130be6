"""The staged pipelines equal torchvision's PIL transforms bitwise, cached or not, per item or
per batch, and draw their random choices from the item's own seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from genreid.data import transforms as pipelines
from genreid.data.config import DataConfig
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord, Role
from genreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, GanTransform, train_transform


def torchvision_train(cfg: DataConfig) -> transforms.Compose:
    """The reference: the PIL transform chain genreid used before the staged pipelines."""
    size = cfg.size
    resize = tuple(cfg.resize) or size
    ops: list = [transforms.Resize(resize, interpolation=transforms.InterpolationMode.BICUBIC)]
    if cfg.pad > 0:
        ops.append(transforms.Pad(cfg.pad))
    if cfg.pad > 0 or resize != size:
        ops.append(transforms.RandomCrop(size))
    if cfg.flip:
        ops.append(transforms.RandomHorizontalFlip())
    ops += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if cfg.erasing_p > 0:
        a = cfg.erasing_min_aspect
        ops.append(
            transforms.RandomErasing(
                cfg.erasing_p, scale=tuple(cfg.erasing_area), ratio=(a, 1 / a), value=0
            )
        )
    return transforms.Compose(ops)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Noise images of several sizes (as real crops and 128x128 GAN samples come)."""
    tmp = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(0)
    recs = []
    for k, (h, w) in enumerate([(32, 16), (40, 24), (32, 32), (24, 12)]):
        path = tmp / f"{k}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        recs.append(ImageRecord(str(path), k, 1, Role.TRAIN))
    return recs


CONFIGS = [
    {"height": 32, "width": 16, "pad": 4},
    {"height": 32, "width": 16, "pad": 4, "erasing_p": 1.0},
    {"height": 32, "width": 16, "resize": [36, 20], "erasing_p": 0.5, "erasing_area": [0.1, 0.9]},
    {"height": 32, "width": 16, "flip": False},
    {"height": 32, "width": 16, "pad": 3, "resize": [30, 14]},
]


@pytest.mark.parametrize("overrides", CONFIGS)
@pytest.mark.parametrize("cache", [False, True])
def test_train_pipeline_equals_torchvision(images, overrides, cache):
    cfg = DataConfig(**overrides)
    ref = torchvision_train(cfg)
    ds = ImageDataset(images, train_transform(cfg), cache=cache)
    batched = ImageDataset(images, train_transform(cfg), cache=cache).batched()
    for seed in range(12):
        keys = [(i, seed * 100 + i) for i in range(len(images))]
        batch = batched.collate([batched[k] for k in keys])["image"]
        for (i, s), from_batch in zip(keys, batch, strict=True):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                want = ref(Image.open(images[i].path).convert("RGB"))
            assert torch.equal(ds[(i, s)]["image"], want), (overrides, i, s)
            assert torch.equal(from_batch, want), (overrides, i, s)


def test_items_leave_the_global_rng_alone_and_depend_on_their_seed(images):
    ds = ImageDataset(images, train_transform(DataConfig(height=32, width=16, pad=4)))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a, b = ds[(0, 7)]["image"], ds[(0, 7)]["image"]
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), before)
    assert not all(torch.equal(a, ds[(0, s)]["image"]) for s in range(8, 14))


def test_test_pipeline_and_loader_batches(images):
    ref = transforms.Compose(
        [
            transforms.Resize((32, 16), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    ds = ImageDataset(images, pipelines.test_transform((32, 16))).batched()
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate)))
    for rec, got in zip(images, batch["image"], strict=True):
        assert torch.equal(got, ref(Image.open(rec.path).convert("RGB")))
    assert "erase" not in batch and batch["index"].tolist() == [0, 1, 2, 3]


def test_gan_transform_matches_the_pil_version(images):
    """Bilinear resize, [-1, 1], and one flip draw per image from the global RNG."""
    tf = GanTransform((32, 16), flip=True)
    ds = ImageDataset(images, tf, cache=True).batched()
    torch.manual_seed(3)
    batch = ds.collate([ds[i] for i in range(len(images))])["image"]
    torch.manual_seed(3)
    for rec, got in zip(images, batch, strict=True):
        img = Image.open(rec.path).convert("RGB")
        if img.size != (16, 32):
            img = img.resize((16, 32), Image.Resampling.BILINEAR)
        x = transforms.functional.to_tensor(img).mul_(2).sub_(1)
        if bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        assert torch.equal(got, x)


def test_cache_is_never_written_by_augmentation(images):
    ds = ImageDataset(images, train_transform(DataConfig(height=32, width=16, pad=2)), cache=True)
    kept = ds.prepared.clone()
    for s in range(20):
        [ds[(i, s)] for i in range(len(images))]  # finished one by one
    ds.batched()
    for s in range(20):
        ds.collate([ds[(i, s)] for i in range(len(images))])
    assert torch.equal(kept, ds.prepared)
