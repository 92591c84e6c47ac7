"""Batched, reproducible augmentation: each transform does what it says, per image, from the generator."""
from __future__ import annotations

import pytest
import torch

from archspec.errors import UsageError
from archspec import data as D
from archspec.train.augment import Augment, AugmentedView, augment_batch, rotate

EVERYTHING = Augment(rotation=15, noise=0.05, mirror=True, crop=2, colour_shift=20)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def test_augment_options():
    assert not Augment().active and EVERYTHING.active
    assert Augment.from_dict({"mirror": True, "crop": 4.0}) == Augment(mirror=True, crop=4)
    with pytest.raises(UsageError, match="unknown augment option: flip"):
        Augment.from_dict({"flip": True})
    with pytest.raises(UsageError, match="rotation"):
        Augment(rotation=-5)
    with pytest.raises(UsageError, match="crop"):
        Augment(crop=1.5)


@pytest.mark.parametrize("device", DEVICES)
def test_shape_dtype_device_and_range(device):
    images = torch.rand(8, 3, 12, 10, device=device)
    out = augment_batch(images, EVERYTHING, gen(device=device))
    assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, images)


def test_inactive_is_identity():
    images = torch.rand(4, 1, 5, 5)
    g = gen()
    state = g.get_state()
    assert augment_batch(images, Augment(), g) is images
    assert torch.equal(g.get_state(), state)  # no draws either


def test_reproducible():
    images = torch.rand(6, 3, 9, 9)
    first = augment_batch(images, EVERYTHING, gen(5))
    assert torch.equal(first, augment_batch(images, EVERYTHING, gen(5)))
    assert not torch.equal(first, augment_batch(images, EVERYTHING, gen(6)))


def test_mirror_flips_some_images_exactly():
    images = torch.rand(32, 2, 4, 6)
    out = augment_batch(images, Augment(mirror=True), gen())
    flipped = [torch.equal(o, torch.flip(i, dims=[-1])) for o, i in zip(out, images)]
    kept = [torch.equal(o, i) for o, i in zip(out, images)]
    assert all(f != k for f, k in zip(flipped, kept))  # each is exactly one of the two
    assert 4 < sum(flipped) < 28


def test_rotation():
    square = torch.rand(2, 3, 7, 7)
    assert torch.allclose(rotate(square, torch.tensor([90.0, 90.0])), torch.rot90(square, 1, dims=(-2, -1)),
                          atol=1e-5)  # counter-clockwise
    assert torch.allclose(rotate(square, torch.tensor([180.0, 0.0]))[0], square[0].flip(-1).flip(-2), atol=1e-5)
    wide = torch.zeros(1, 1, 9, 15)
    wide[0, 0, 4, 9] = 1.0  # two pixels right of the centre (4, 7)
    turned = rotate(wide, torch.tensor([90.0]))
    assert (turned[0, 0] > 0.5).nonzero().tolist() == [[2, 7]]  # two pixels above it: a rotation, not a shear
    images = torch.rand(3, 1, 8, 8)
    assert torch.allclose(augment_batch(images, Augment(rotation=1e-4), gen()), images, atol=1e-4)
    spun = augment_batch(images.expand(3, 1, 8, 8).clone()[:1].expand(3, 1, 8, 8), Augment(rotation=40), gen())
    assert not torch.allclose(spun[0], spun[1])  # each image its own angle


def test_crop_shifts_content():
    images = torch.zeros(40, 1, 16, 16)
    images[:, 0, 8, 7] = 1.0
    out = augment_batch(images, Augment(crop=3), gen())
    shifts = set()
    for image in out:
        bright = (image[0] == 1.0).nonzero().tolist()
        assert len(bright) == 1 and image.sum() == 1.0  # moved, not blurred
        (row, col), = bright
        assert abs(row - 8) <= 3 and abs(col - 7) <= 3
        shifts.add((row - 8, col - 7))
    assert len(shifts) > 5
    texture = torch.rand(2, 3, 10, 10)
    moved = augment_batch(texture, Augment(crop=2), gen(3))
    # the middle of the crop is the original shifted by a whole number of pixels
    centre = moved[:, :, 2:8, 2:8]
    matches = [any(torch.equal(centre[b], texture[b, :, 2 + dy:8 + dy, 2 + dx:8 + dx])
                   for dy in range(-2, 3) for dx in range(-2, 3)) for b in range(2)]
    assert all(matches)


def test_colour_shift_is_constant_per_channel():
    images = 0.4 + 0.2 * torch.rand(16, 3, 5, 5)  # away from 0 and 1, so clamping never bites
    out = augment_batch(images, Augment(colour_shift=20), gen())
    delta = out - images
    per_channel = delta.mean(dim=(2, 3))
    assert torch.allclose(delta, per_channel[:, :, None, None].expand_as(delta), atol=1e-6)
    assert per_channel.abs().max() <= 20 / 255 + 1e-6
    assert per_channel.abs().max() > 10 / 255  # it does shift
    assert not torch.allclose(per_channel[:, 0], per_channel[:, 1])  # channels independently


def test_noise_strength():
    images = torch.full((4, 3, 32, 32), 0.5)
    out = augment_batch(images, Augment(noise=0.05), gen())
    assert (out - images).std().item() == pytest.approx(0.05, rel=0.1)


def test_clamped():
    images = torch.ones(4, 3, 6, 6)
    out = augment_batch(images, Augment(colour_shift=255, noise=0.5), gen())
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() == 1.0


def test_augmented_view_independent_of_workers():
    data = D.open_data("synthetic:24:3", (1, 6, 6))
    view = AugmentedView(data, Augment(mirror=True, crop=1, noise=0.1), base_seed=7)

    def run(workers):
        loader = torch.utils.data.DataLoader(view, batch_size=5, num_workers=workers, collate_fn=D.collate)
        batches = list(loader)
        return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])

    view.set_epoch(3)
    alone, labels = run(0)
    assert torch.equal(labels, data.labels)
    together, _ = run(2)
    assert torch.equal(alone, together)
    assert not torch.equal(alone, data.images)
    view.set_epoch(4)
    assert not torch.equal(run(0)[0], alone)  # a new epoch, new augmentations
    view.set_epoch(3)
    assert torch.equal(run(0)[0], alone)
    plain = AugmentedView(data, Augment(), base_seed=7)
    assert torch.equal(plain[2][0], data[2][0])
