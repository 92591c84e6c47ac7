"""The readers of archspec.data: idx (MNIST, Fashion-MNIST, EMNIST), CIFAR binary, CSV and class folders,
each fed small files generated here in the published formats."""
import gzip
import os
import struct
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from archspec import data as D
from archspec.data import labelled
from archspec.errors import ArchspecError, LimitError, Location, UsageError


def idx_bytes(values: torch.Tensor) -> bytes:
    head = bytes([0, 0, 0x08, values.dim()]) + struct.pack(f">{values.dim()}I", *values.shape)
    return head + values.to(torch.uint8).numpy().tobytes()


def write_idx_pair(folder, images_name, images, labels, compressed=False):
    folder.mkdir(parents=True, exist_ok=True)
    labels_name = images_name.replace("images-idx3", "labels-idx1")
    suffix = ".gz" if compressed else ""
    for name, values in ((images_name, images), (labels_name, labels)):
        raw = idx_bytes(values)
        (folder / (name + suffix)).write_bytes(gzip.compress(raw) if compressed else raw)


def mnist_like(count, rows=4, cols=5, classes=3, offset=0):
    images = ((torch.arange(count * rows * cols) + offset) % 256).to(torch.uint8).view(count, rows, cols)
    return images, (torch.arange(count) % classes).to(torch.uint8)


# -- idx: MNIST, Fashion-MNIST, EMNIST -------------------------------------------------------------


def test_mnist_uses_t10k_as_the_test_split(tmp_path):
    write_idx_pair(tmp_path, "train-images-idx3-ubyte", *mnist_like(30))
    test_images, test_labels = mnist_like(9, offset=7)
    write_idx_pair(tmp_path, "t10k-images-idx3-ubyte", test_images, test_labels, compressed=True)
    for source in (f"mnist:{tmp_path}", str(tmp_path)):
        splits = D.load_splits(source, (1, 4, 5), fractions=(0.8, 0.2, 0.0))
        assert len(splits.test) == 9 and "t10k" in splits.test.origin
        assert torch.equal(splits.test.images[:, 0], test_images.float() / 255)
        assert len(splits.train) + len(splits.val) == 30 and len(splits.val) == 6


def test_data_paths_expand_home_and_variables(tmp_path, monkeypatch):
    write_idx_pair(tmp_path / "m", "train-images-idx3-ubyte", *mnist_like(6))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ARCHSPEC_TEST_DATA", str(tmp_path))
    for source in ("mnist:~/m", "mnist:$ARCHSPEC_TEST_DATA/m", "mnist:${ARCHSPEC_TEST_DATA}/m", "~/m"):
        assert len(D.open_data(source, (1, 4, 5))) == 6
    monkeypatch.delenv("ARCHSPEC_NOT_SET", raising=False)
    with pytest.raises(UsageError, match="the environment variable ARCHSPEC_NOT_SET is not set"):
        D.open_data("mnist:$ARCHSPEC_NOT_SET/m", (1, 4, 5))


def test_idx_with_zero_images_is_a_message(tmp_path):
    write_idx_pair(tmp_path, "train-images-idx3-ubyte", torch.zeros((0, 28, 28), dtype=torch.uint8),
                   torch.zeros(0, dtype=torch.uint8))
    with pytest.raises(ArchspecError, match="holds no images") as info:
        D.open_data(f"mnist:{tmp_path}", (1, 28, 28))
    assert info.value.problem.location == Location(str(tmp_path / "train-images-idx3-ubyte"))


def test_small_gzip_claiming_a_huge_payload_fails_before_allocating(tmp_path):
    # 1,000 images of 28×28 are declared (784,000 bytes); the gzip file holds 100 bytes of them
    head = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1000, 28, 28)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + b"\1" * 100))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(torch.zeros(1000, dtype=torch.uint8)))
    tracemalloc.start()
    try:
        with pytest.raises(ArchspecError, match="more than a gzip file of [0-9,]+ bytes can hold"):
            D.open_data(str(tmp_path), (1, 28, 28))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000  # nothing the declared size was allocated


def test_gzip_bomb_is_refused_against_available_memory_before_decompressing(tmp_path, monkeypatch):
    # 4 MB of zeros compress to about 4 kB; with 2 MB available the set cannot fit
    images = torch.zeros((5000, 28, 28), dtype=torch.uint8)
    write_idx_pair(tmp_path, "train-images-idx3-ubyte", images, torch.zeros(5000, dtype=torch.uint8),
                   compressed=True)
    assert (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size < 20_000
    monkeypatch.setattr(labelled, "available_memory", lambda: 2 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match=r"needs 18\.7 MiB in memory, more than 1\.0 MiB \(half the 2\.0 MiB"):
            D.open_data(str(tmp_path), (1, 28, 28))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # refused before the 3.9 MB payload was decompressed


def test_gzip_longer_than_declared_stops_at_the_declared_size(tmp_path):
    head = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 4, 5)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + b"\0" * 40 + b"\0" * 100_000))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(torch.zeros(2, dtype=torch.uint8)))
    with pytest.raises(ArchspecError, match="longer than declared"):
        D.open_data(str(tmp_path), (1, 4, 5))


def test_fashion_mnist_names_its_classes(tmp_path):
    images, _ = mnist_like(20)
    write_idx_pair(tmp_path, "train-images-idx3-ubyte", images, torch.arange(20) % 10, compressed=True)
    data = D.open_data(f"fashion-mnist:{tmp_path}", (1, 4, 5))
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot" and len(data.classes) == 10
    assert "Fashion-MNIST" in data.origin


def test_emnist_images_are_transposed_and_classes_mapped(tmp_path):
    images = torch.arange(4 * 3 * 3, dtype=torch.uint8).view(4, 3, 3)
    labels = torch.tensor([1, 2, 1, 26], dtype=torch.uint8)  # the letters split numbers A..Z from 1
    write_idx_pair(tmp_path, "emnist-letters-train-images-idx3-ubyte", images, labels, compressed=True)
    write_idx_pair(tmp_path, "emnist-letters-test-images-idx3-ubyte", images[:2], labels[:2], compressed=True)
    (tmp_path / "emnist-letters-mapping.txt").write_text(
        "".join(f"{k} {64 + k} {96 + k}\n" for k in range(1, 27)))
    data = D.open_data(f"emnist:{tmp_path}", (1, 3, 3))
    assert data.classes[:2] == ["A", "B"] and data.classes[-1] == "Z" and data.labels.tolist() == [0, 1, 0, 25]
    assert torch.equal(data.images[1, 0], images[1].T.float() / 255)
    splits = D.load_splits(f"emnist-letters:{tmp_path}", (1, 3, 3), fractions=(0.5, 0.5, 0.0))
    assert len(splits.test) == 2
    write_idx_pair(tmp_path, "emnist-digits-train-images-idx3-ubyte", images, labels % 10)
    with pytest.raises(UsageError, match=r"several EMNIST splits \(digits, letters\).*emnist-SPLIT:"):
        D.open_data(f"emnist:{tmp_path}", (1, 3, 3))
    with pytest.raises(ArchspecError, match="no emnist-byclass-train-images"):
        D.open_data(f"emnist-byclass:{tmp_path}", (1, 3, 3))


# -- CIFAR binary ----------------------------------------------------------------------------------


def cifar_records(count, label_bytes, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10 if label_bytes == 1 else 20, (count, label_bytes), dtype=np.uint8)
    if label_bytes == 2:
        labels[:, 1] = rng.integers(0, 100, count)
    labels[:3, -1] = [0, 1, 2]
    pixels = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
    return np.concatenate([labels, pixels], axis=1)


def test_cifar10_binary(tmp_path):
    first, second, test = cifar_records(12, 1), cifar_records(8, 1, seed=1), cifar_records(5, 1, seed=2)
    (tmp_path / "data_batch_1.bin").write_bytes(first.tobytes())
    (tmp_path / "data_batch_2.bin").write_bytes(second.tobytes())
    (tmp_path / "test_batch.bin").write_bytes(test.tobytes())
    data = D.open_data(f"cifar10:{tmp_path}", (3, 32, 32))
    assert len(data) == 20 and data.classes[:3] == ["airplane", "automobile", "bird"]
    assert data.labels[:12].tolist() == first[:, 0].tolist()
    # red plane of record 0: its first 1,024 pixel bytes, row by row
    assert torch.equal(data.images[0, 0], torch.tensor(first[0, 1:1025].reshape(32, 32)).float() / 255)
    assert torch.equal(data.images[12, 2], torch.tensor(second[0, 2049:].reshape(32, 32)).float() / 255)
    splits = D.load_splits(str(tmp_path), (1, 16, 16), fractions=(0.75, 0.25, 0.0))
    assert len(splits.test) == 5 and len(splits.train) == 15
    (tmp_path / "batches.meta.txt").write_text("\n".join(f"kind{k}" for k in range(10)) + "\n\n")
    assert D.open_data(f"cifar10:{tmp_path}", (3, 32, 32)).classes[0] == "kind0"


def test_cifar100_fine_and_coarse(tmp_path):
    records = cifar_records(10, 2)
    (tmp_path / "train.bin").write_bytes(records.tobytes())
    (tmp_path / "test.bin").write_bytes(cifar_records(4, 2, seed=3).tobytes())
    fine = D.open_data(f"cifar100:{tmp_path}", (3, 32, 32))
    coarse = D.open_data(f"cifar100-coarse:{tmp_path}", (3, 32, 32))
    assert len(fine.classes) == 100 and len(coarse.classes) == 20
    assert fine.labels.tolist() == records[:, 1].tolist() and coarse.labels.tolist() == records[:, 0].tolist()
    assert torch.equal(fine.images, coarse.images)
    assert len(D.load_splits(f"cifar100:{tmp_path}", (3, 32, 32), fractions=(0.8, 0.2, 0.0)).test) == 4


def test_cifar_files_are_checked(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(cifar_records(3, 1).tobytes()[:-10])
    with pytest.raises(ArchspecError, match="not a whole number of CIFAR-10 records of 3,073 bytes") as info:
        D.open_data(f"cifar10:{tmp_path}", (3, 32, 32))
    assert info.value.problem.location == Location(str(tmp_path / "data_batch_1.bin"))
    records = cifar_records(3, 1)
    records[2, 0] = 12
    (tmp_path / "data_batch_1.bin").write_bytes(records.tobytes())
    with pytest.raises(ArchspecError, match="record 2 has label 12; CIFAR-10 has 10 classes"):
        D.open_data(f"cifar10:{tmp_path}", (3, 32, 32))
    with pytest.raises(ArchspecError, match="no CIFAR-100 binary files"):
        D.open_data(f"cifar100:{tmp_path}", (3, 32, 32))


# -- CSV and class folders -------------------------------------------------------------------------


def _pngs(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        Image.new("L", (6, 5), 20 * k).save(folder / f"{k}.png")


def test_csv_labels_that_are_not_class_numbers_are_located(tmp_path):
    _pngs(tmp_path, 4)
    rows = ["path,label", "0.png,0", "1.png,1", "2.png,3.5", "3.png,1", "0.png,cat", "1.png,-1", "2.png,0"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ArchspecError) as info:
        D.open_data(str(tmp_path / "list.csv"), (1, 5, 6))
    found = [str(p) for p in info.value.problems]
    csv = tmp_path / "list.csv"
    assert found == [f"{csv}:4: error: label 3.5 is not a whole number; class numbers are 0, 1, 2, …",
                     f"{csv}:6: error: label 'cat' is not a class number, as the other labels are",
                     f"{csv}:7: error: label -1 is negative; class numbers start at 0"]


def test_csv_of_class_names_keeps_them(tmp_path):
    _pngs(tmp_path, 3)
    (tmp_path / "list.csv").write_text("0.png,cat\n1.png,dog\n2.png,7\n")
    assert D.open_data(str(tmp_path / "list.csv"), (1, 5, 6)).classes == ["7", "cat", "dog"]


def test_an_empty_class_folder_is_a_message(tmp_path):
    _pngs(tmp_path / "cat", 2)
    _pngs(tmp_path / "dog", 2)
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "notes.txt").write_text("no images here")
    with pytest.raises(ArchspecError, match=r"class folder 'emu' holds no image files \(png, jpg") as info:
        D.open_data(str(tmp_path), (1, 5, 6))
    assert info.value.problem.location == Location(str(tmp_path / "emu"))


def test_streamed_folder_shards_by_index_through_workers(tmp_path):
    for name in ("a", "b"):
        _pngs(tmp_path / name, 5)
    data = D.open_data(str(tmp_path), (1, 5, 6))
    assert data.images is None  # file-backed: decoded when read
    seen = []
    for rank in range(2):  # what each of two processes reads under a DistributedSampler
        sampler = torch.utils.data.distributed.DistributedSampler(data, num_replicas=2, rank=rank, shuffle=False)
        loader = torch.utils.data.DataLoader(data, batch_size=3, sampler=sampler, num_workers=1,
                                             collate_fn=D.collate)
        seen.append(torch.cat([labels for _, labels in loader]))
    assert len(seen[0]) == len(seen[1]) == 5
    whole = data.in_memory(1 << 20)
    assert sorted(torch.cat(seen).tolist()) == sorted(whole.labels.tolist())


def test_skip_warning_prints_its_location_not_a_source_line(tmp_path, capsys):
    from archspec.commands.common import user_errors

    _pngs(tmp_path / "cat", 3)
    _pngs(tmp_path / "dog", 3)
    (tmp_path / "dog" / "9.png").write_text("not an image")
    (tmp_path / "list.csv").write_text("".join(f"{c}/{k}.png,{c}\n" for c in ("cat", "dog") for k in range(3))
                                       + "dog/9.png,dog\n")

    @user_errors
    def command():  # what `archspec train --config c.yaml` with bad_images: skip does to the set
        return D.open_data(str(tmp_path / "list.csv"), (1, 5, 6), bad_images="skip").in_memory(1 << 20)

    assert len(command()) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'list.csv'}:7: warning: skipped unreadable image {tmp_path}/dog/9.png: ")
    assert len(err.splitlines()) == 1 and "warnings.warn" not in err and "BadImageWarning" not in err


# -- batches and fuzzing ---------------------------------------------------------------------------


def test_batches_decode_once_and_work_with_either_collate(tmp_path):
    for name in ("a", "b"):
        _pngs(tmp_path / name, 3)
    (tmp_path / "b" / "9.png").write_text("broken")
    data = D.open_data(str(tmp_path), (1, 5, 6), bad_images="skip")
    with pytest.warns(D.BadImageWarning, match="9.png"):
        images, labels = D.collate(data.__getitems__(range(len(data))))
    assert images.shape == (6, 1, 5, 6) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(images[4], data[4][0])  # the batch path and the one-image path agree
    default = torch.utils.data.DataLoader(data.subset([0, 1, 3]), batch_size=3)  # PyTorch's default collate
    images, labels = next(iter(default))
    assert images.shape == (3, 1, 5, 6) and labels.tolist() == [0, 0, 1]


FUZZ_EXAMPLES = int(os.environ.get("ARCHSPEC_FUZZ_EXAMPLES", "60"))


def _data_files(tmp_path):
    """A valid idx pair (gzipped images), CIFAR-10 batch and CSV list, as bytes by name."""
    images, labels = mnist_like(6)
    _pngs(tmp_path / "img", 2)
    return {"train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images)),
            "train-labels-idx1-ubyte": idx_bytes(labels),
            "data_batch_1.bin": cifar_records(3, 1).tobytes(),
            "list.csv": b"path,label\nimg/0.png,0\nimg/1.png,1\nimg/0.png,1\n"}


def _open_all(folder):
    for source, shape in ((f"mnist:{folder}", (1, 4, 5)), (f"cifar10:{folder}", (3, 8, 8)),
                          (str(folder / "list.csv"), (1, 5, 6))):
        try:
            data = D.open_data(source, shape)
            data.in_memory(1 << 24)
        except ArchspecError as exc:
            for problem in exc.problems:
                assert problem.location is not None and problem.location.file, problem


@pytest.mark.slow
def test_mutated_data_files_give_located_messages(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = tmp_path_factory.mktemp("valid")
    files = _data_files(base)

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(name=st.sampled_from(sorted(files)), cut=st.integers(0, 4000), flips=st.lists(
        st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4), tail=st.binary(max_size=16))
    def check(name, cut, flips, tail):
        folder = tmp_path_factory.mktemp("fuzz")
        for other, raw in files.items():
            (folder / other).write_bytes(raw)
        (folder / "img").symlink_to(base / "img", target_is_directory=True)
        raw = bytearray(files[name][:cut or None])
        for at, value in flips:
            if raw:
                raw[at % len(raw)] = value
        (folder / name).write_bytes(bytes(raw) + tail)
        _open_all(folder)

    check()
