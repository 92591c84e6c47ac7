"""Streaming a folder of JPEGs: archspec's file-backed loader against a plain PIL + DataLoader pipeline.

The benchmark writes a folder of class subfolders holding 64×64 JPEGs (20,000 by default; kept in
--folder for later runs), then reads every image once per epoch on both sides, with the same
DataLoader worker count, batch size and shuffling:

- archspec: ``archspec.data.open_data(folder, (3, 64, 64))``, the file-backed set `archspec train`
  streams when a folder does not fit in memory, in a DataLoader with archspec's ``collate``, as the
  trainer builds it (a batch sampler of shuffled indices);
- plain: the pipeline a person writes by hand, the usual way: a Dataset over the sorted files whose
  ``__getitem__`` opens the image with PIL, converts it to RGB, resizes it when it is not 64×64 and
  turns it into a float tensor in [0, 1] (torchvision's ToTensor, written out), and a DataLoader with
  the default collate.

Both sides normalise nothing (the trainer normalises on the device, after the loader). Each round
times one epoch of each side, which goes first alternating, after a warm-up epoch of each; the
report is the median images/s of each side and their ratio (archspec / plain, higher is better).

    python bench/bench_loader.py                          # 20,000 images, 2 workers, 3 rounds
    python bench/bench_loader.py --workers 4 --rounds 5 --folder /tmp/jpegs
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from archspec.data import collate, open_data

SIZE = 64


def make_folder(folder: Path, count: int, classes: int) -> None:
    """``count`` JPEGs of SIZE×SIZE in ``classes`` subfolders: smooth colour patterns plus noise (so each
    file is a realistic few kB, not a flat image that decodes faster than a photo)."""
    rng = np.random.default_rng(0)
    done = folder / f".complete-{count}-{classes}"
    if done.exists():
        return
    coarse = rng.integers(0, 256, (classes, 4, 4, 3), dtype=np.uint8)
    for k in range(classes):
        (folder / f"class{k}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        k = i % classes
        base = np.asarray(Image.fromarray(coarse[k]).resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.int16)
        noisy = np.clip(base + rng.integers(-40, 41, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"class{k}" / f"{i:06d}.jpg", quality=90)
    done.touch()


class PlainFolder(torch.utils.data.Dataset):
    """An image folder written the usual way."""

    def __init__(self, root: Path):
        self.classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        self.samples = [(str(root / c / f), k) for k, c in enumerate(self.classes)
                        for f in sorted(os.listdir(root / c)) if f.endswith(".jpg")]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        with Image.open(path) as image:
            image = image.convert("RGB")
        if image.size != (SIZE, SIZE):
            image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        array = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous()
        return array.float().div(255), label


def epoch(loader) -> float:
    """Images per second for one pass over ``loader``."""
    started = time.perf_counter()
    count = 0
    for images, _ in loader:
        count += images.shape[0]
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "archspec-bench-jpegs")
    args = parser.parse_args()

    started = time.perf_counter()
    make_folder(args.folder, args.images, args.classes)
    print(f"folder {args.folder}: {args.images:,} JPEGs of {SIZE}×{SIZE} "
          f"(ready in {time.perf_counter() - started:.1f} s)")

    data = open_data(str(args.folder), (3, SIZE, SIZE))
    assert data.images is None, "the archspec side must stream (file-backed), not hold the set in memory"
    generator = torch.Generator().manual_seed(0)

    def archspec_loader():
        order = torch.randperm(len(data), generator=generator)
        batches = [order[i:i + args.batch].tolist() for i in range(0, len(data), args.batch)]
        return torch.utils.data.DataLoader(data, batch_sampler=batches, num_workers=args.workers,
                                           collate_fn=collate)

    plain = PlainFolder(args.folder)
    assert len(plain) == len(data)

    def plain_loader():
        return torch.utils.data.DataLoader(plain, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                           generator=generator)

    # the same pixels on both sides (the JPEGs are 64×64: no resizing on either side)
    mine, theirs = data[5][0], plain[5][0]
    print(f"largest pixel difference between the sides: {float((mine - theirs).abs().max()):.2e}")

    sides = {"archspec": archspec_loader, "plain": plain_loader}
    for make in sides.values():  # warm-up: page cache, worker start-up paths, Pillow's plugins
        epoch(make())
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in order:
            rates[name].append(epoch(sides[name]()))
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {rates[n][-1]:,.0f} images/s" for n in sides))
    a, b = statistics.median(rates["archspec"]), statistics.median(rates["plain"])
    print(f"\nmedian of {args.rounds} epochs, {args.workers} workers, batch {args.batch}, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"| archspec streamed folder | {a:,.0f} images/s |")
    print(f"| plain PIL + DataLoader   | {b:,.0f} images/s |")
    print(f"| ratio archspec / plain   | {a / b:.2f} |")


if __name__ == "__main__":
    main()
