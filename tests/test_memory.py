"""Memory truth: the summary's ``saved_bytes`` against what autograd really keeps, for every zoo spec.

The measurement (the approach of test_infer.py, on the compiled module itself): every tensor
autograd saves for backward during one training-mode forward pass goes through
``torch.autograd.graph.saved_tensors_hooks``; the bytes of the distinct storages among them are
summed, parameters excluded (views share their base's storage and count once).

It runs on the meta device: module and input on meta, so a pass over ResNet-152 at batch 8 costs
what it costs at batch 1 and allocates nothing. Autograd decides what to save above the device
(the same derivative formulas, the same CPU dropout path, the same native batch norm), so the
figures are the CPU's; test_meta_measures_what_the_cpu_measures checks that on real CPU passes.
A storage is identified by ``untyped_storage()._cdata`` (the address of its StorageImpl), not by
``data_ptr()``, which is 0 for every meta storage; every packed tensor is kept alive until the
count is done, so no address is reused.

Dropout. The summary counts the 1-byte boolean mask that ``nn.Dropout`` keeps on a GPU (torch's
fused kernel, ``torch.native_dropout``). On a CPU (and on meta) ``nn.Dropout`` multiplies by a
float noise tensor and keeps that: 4 bytes per element. The 5% assertion compares the summary
with the module running the GPU's kernel; the module as compiled, on the CPU, must then keep
exactly 3 more bytes per dropped-out element, no more (a second assertion). For most specs that
is well under 1%; for cnn27, whose dropouts follow its convolutions, the CPU keeps 22% more
than the summary says (docs/memory.md has the table; ``python tests/test_memory.py`` prints it).
"""
from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archspec  # noqa: E402
from archspec import zoo  # noqa: E402

from shared_specs import zoo_representatives  # noqa: E402

ZOO = zoo_representatives(zoo.names())
TOLERANCE = 0.05
# the specs of test_zoo_torchvision.py's newer families: deep graphs whose meta-device passes cost
# seconds (batch norm on meta is a Python decomposition), so batch 1 only, and marked slow
DEEP = {"densenet121", "densenet169", "densenet201", "inception_v3", "mobilenet_v2", "mobilenet_v3_small",
        "mobilenet_v3_large", "mnasnet1_0", "shufflenet_v2_x1_0", "regnet_x_400mf", "regnet_y_400mf",
        "resnext50_32x4d", "wide_resnet50_2", "convnext_tiny", "squeezenet1_0", "squeezenet1_1",
        *(f"efficientnet_b{i}" for i in range(8)), "efficientnet"}


def zoo_cases(batches: tuple[int, ...]) -> list:
    """(name, batch) for every zoo spec; the deep ones at batch 1, marked slow."""
    return [pytest.param(name, batch, marks=[pytest.mark.slow] if name in DEEP else [])
            for name in ZOO for batch in ((1,) if name in DEEP else batches)]


# ------------------------------------------------------------------ measuring


def storage_id(t) -> int:
    return t.untyped_storage()._cdata


def measure_saved(module: nn.Module, x) -> int:
    """Bytes of the distinct storages autograd saves in one forward pass, parameters excluded."""
    params = {storage_id(p) for p in module.parameters()}
    storages: dict[int, int] = {}
    keep = []

    def pack(t):
        s = t.untyped_storage()
        if s._cdata not in params:
            storages[s._cdata] = s.nbytes()
        keep.append(t)  # alive until the end: no storage address is reused
        return t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            module(x)
    return sum(storages.values())


def output_storages(gm, x) -> int:
    """Bytes of the distinct storages of the input and of every node's output in one forward pass."""
    import torch.fx

    storages = {storage_id(x): x.untyped_storage().nbytes()}
    keep = [x]

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if isinstance(result, torch.Tensor):
                storages[storage_id(result)] = result.untyped_storage().nbytes()
                keep.append(result)  # the interpreter frees values after their last use
            return result

    Recorder(gm).run(x)
    return sum(storages.values())


def meta_module(name: str, fused_dropout: bool = False):
    """The compiled module on the meta device, in training mode."""
    with torch.device("meta"):
        gm = archspec.build(name)
    if fused_dropout:
        for m in gm.modules():
            if isinstance(m, nn.Dropout):
                # what nn.Dropout runs on a GPU: torch's fused kernel, which keeps a bool mask
                m.forward = lambda x, p=m.p: torch.native_dropout(x, p, True)[0]
    return gm.train()


def dropout_elements(name: str) -> int:
    """Elements per sample that an nn.Dropout of the spec masks."""
    return sum(math.prod(n.shape) for n in archspec.expand(name).nodes if n.type == "dropout")


def measure(name: str, batch: int) -> dict:
    """Analytic and measured saved bytes of a zoo spec (meta device)."""
    analytic = archspec.summarize(name, batch=batch).totals.saved_bytes
    shape = archspec.expand(name).input_shape
    x = torch.empty(batch, *shape, device="meta")
    gpu_kernel = measure_saved(meta_module(name, fused_dropout=True), x)
    cpu_kernel = measure_saved(meta_module(name), x)
    return {"name": name, "batch": batch, "analytic": analytic, "gpu_kernel": gpu_kernel,
            "cpu_kernel": cpu_kernel}


def measure_forward_peak(name: str, batch: int) -> int:
    """Peak bytes of live tensors in an inference pass (eval, no grad) of the compiled module on
    meta, parameters and buffers excluded: every tensor any torch operation returns is tracked
    (temporaries inside a layer included) until the last tensor on its storage is freed."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    with torch.device("meta"):
        gm = archspec.build(name).eval()
    state = {storage_id(t) for t in [*gm.parameters(), *gm.buffers()]}
    live: dict[int, list[int]] = {}  # storage -> [tensors alive on it, bytes]
    now = [0, 0]  # live bytes, peak

    def track(t) -> None:
        cd = storage_id(t)
        if cd in state:
            return
        if cd not in live:
            live[cd] = [0, t.untyped_storage().nbytes()]
            now[0] += live[cd][1]
            now[1] = max(now)
        live[cd][0] += 1
        weakref.finalize(t, release, cd)

    def release(cd: int) -> None:
        live[cd][0] -= 1
        if not live[cd][0]:
            now[0] -= live.pop(cd)[1]

    class Tracker(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    track(t)
            return out

    inputs = [torch.empty(batch, *archspec.expand(name).input_shape, device="meta")]
    track(inputs[0])
    with torch.no_grad(), Tracker():
        gm(inputs.pop())  # the caller keeps no reference; nn.Module's call still holds it
    return now[1]


# ------------------------------------------------------------------ the measurement itself


def test_meta_storages_have_identities_and_sizes():
    """data_ptr() cannot tell meta storages apart; _cdata can, and nbytes is the real size."""
    a = torch.empty(3, 5, device="meta")
    b = torch.empty(3, 5, device="meta")
    assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() == 0
    assert storage_id(a) != storage_id(b)
    assert storage_id(a[1:]) == storage_id(a) == storage_id(a.view(15)) == storage_id(a.flatten())
    assert a.untyped_storage().nbytes() == 60
    assert torch.empty(7, dtype=torch.int64, device="meta").untyped_storage().nbytes() == 56
    assert torch.empty(7, dtype=torch.bool, device="meta").untyped_storage().nbytes() == 7


@pytest.mark.parametrize("name", ["mnist_cnn", "lenet5", "cnn32", "cnn27", "alexnet", "resnet18",
                                  "googlenet"])
def test_meta_measures_what_the_cpu_measures(name):
    """Real CPU passes save the same storages as meta ones (every layer type of the zoo is here)."""
    batch = 2
    shape = archspec.expand(name).input_shape
    cpu = archspec.build(name, seed=0).train()
    on_cpu = measure_saved(cpu, torch.randn(batch, *shape))
    assert on_cpu == measure_saved(meta_module(name), torch.empty(batch, *shape, device="meta"))


@pytest.mark.parametrize("name", ["cnn27", "alexnet"])
def test_meta_measures_what_the_cpu_measures_with_the_gpu_dropout_kernel(name):
    batch = 2
    shape = archspec.expand(name).input_shape
    cpu = archspec.build(name, seed=0).train()
    for m in cpu.modules():
        if isinstance(m, nn.Dropout):
            m.forward = lambda x, p=m.p: torch.native_dropout(x, p, True)[0]
    assert measure_saved(cpu, torch.randn(batch, *shape)) == measure_saved(
        meta_module(name, fused_dropout=True), torch.empty(batch, *shape, device="meta"))


def test_measurement_counts_shared_storage_once_and_skips_parameters():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    # conv keeps x; relu keeps its output, which the linear layer keeps again through a view
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 5))
    assert measure_saved(net, x) == (2 * 3 * 64 + 2 * 4 * 64) * 4


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize(("name", "batch"), zoo_cases((1, 8)))
def test_saved_bytes_match_autograd(name, batch):
    m = measure(name, batch)
    ratio = m["analytic"] / m["gpu_kernel"]
    print(f"{name} batch {batch}: analytic {m['analytic']:,} B, autograd {m['gpu_kernel']:,} B "
          f"(ratio {ratio:.4f}); nn.Dropout's CPU kernel {m['cpu_kernel']:,} B")
    assert abs(ratio - 1) <= TOLERANCE, f"{name}: analytic {m['analytic']:,} vs autograd {m['gpu_kernel']:,} bytes"
    # the CPU's dropout keeps a float32 noise tensor instead of the bool mask: 3 more bytes each
    assert m["cpu_kernel"] - m["gpu_kernel"] == 3 * batch * dropout_elements(name)


def test_dropout_mask_matters_only_where_dropout_follows_convolutions():
    big = measure("cnn27", 1)
    assert big["analytic"] / big["cpu_kernel"] < 0.85  # five dropouts over conv feature maps
    vgg = measure("vgg16", 1)
    assert vgg["analytic"] / vgg["cpu_kernel"] > 0.999  # two dropouts over 4096 features


@pytest.mark.parametrize(("name", "batch"), zoo_cases((2,)))
def test_inference_peak_is_a_floor(name, batch):
    """forward_peak_bytes counts the input (held by the caller to the end) and layer outputs, each
    freed after its last reader. Some layers make temporaries it does not count (batch norm's
    per-channel statistics, a few hundred bytes; the zero-padded copy before an asymmetric
    'same' convolution, as big as a feature map). So the figure is a floor; for every zoo spec
    but cnn27 (padded copies) the real peak is within 0.1% of it."""
    analytic = archspec.summarize(name, batch=batch).totals.forward_peak_bytes
    measured = measure_forward_peak(name, batch)
    print(f"{name}: inference peak analytic {analytic:,} B, measured {measured:,} B "
          f"(ratio {analytic / measured:.4f})")
    assert analytic <= measured
    if name == "cnn27":
        assert measured > 1.1 * analytic  # the padded copies of its stride-2 'same' convolutions
    else:
        assert measured - analytic <= 0.001 * measured


# ------------------------------------------------------------------ in-place activations


def relus(module):
    return [m for m in module.modules() if isinstance(m, nn.ReLU)]


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "googlenet"])
def test_inplace_relu_saves_the_same_but_allocates_less(name):
    """archspec compiles nn.ReLU() (not in place); torchvision's ReLU(inplace=True) would change
    the activation memory of a forward pass, not what autograd keeps for backward."""
    batch = 2
    graph = archspec.expand(name)
    totals = archspec.summarize(name, batch=batch).totals
    x = torch.empty(batch, *graph.input_shape, device="meta")

    gm = meta_module(name, fused_dropout=True)
    assert relus(gm) and not any(m.inplace for m in relus(gm))
    saved, outputs = measure_saved(gm, x), output_storages(gm, x)
    # as compiled: the summary's activation memory is every layer output, exactly
    assert outputs == totals.activation_bytes
    assert saved == totals.saved_bytes

    for m in relus(gm):
        m.inplace = True
    relu_bytes = sum(math.prod(n.shape) for n in graph.nodes if n.type == "relu") * batch * 4
    assert measure_saved(gm, x) == saved  # the same storages, the ReLU's now its input's
    assert output_storages(gm, x) == outputs - relu_bytes
    gm(x).sum().backward()  # and autograd accepts it: no saved tensor was overwritten


def test_inplace_relu_after_a_layer_that_saves_its_output_breaks_backward():
    """Where in place is not allowed, autograd refuses (it does not save a copy): a sigmoid keeps
    its output for backward, and a ReLU in place overwrites it."""
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.relu_(torch.sigmoid(x) - 0.5 + 0.5)  # subtraction in between: allowed
    y.sum().backward()
    z = torch.relu_(torch.sigmoid(x))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


# ------------------------------------------------------------------ frozen layers


def test_frozen_layers_at_the_front_save_nothing(spec_file):
    """Frozen at the front, layers need no gradient: autograd records nothing for them, and the
    summary counts nothing for them either."""
    root = zoo.directory()
    spec_file((root / "lib" / "resnet.yaml").read_text(encoding="utf-8"), "lib/resnet.yaml")
    text = (root / "resnet18.yaml").read_text(encoding="utf-8")
    path = spec_file(text.replace("imports:", "freeze: [conv1, bn1, layer1]\nimports:", 1), "frozen.yaml")
    batch = 2
    analytic = archspec.summarize(path, batch=batch).totals.saved_bytes
    assert analytic < archspec.summarize("resnet18", batch=batch).totals.saved_bytes
    with torch.device("meta"):
        gm = archspec.build(path).train()
    measured = measure_saved(gm, torch.empty(batch, 3, 224, 224, device="meta"))
    assert abs(analytic - measured) <= 0.05 * measured
    print(f"resnet18 with conv1, bn1 and layer1 frozen, batch {batch}: analytic {analytic:,} B, "
          f"autograd {measured:,} B (ratio {analytic / measured:.3f})")


# ------------------------------------------------------------------ the table of docs/memory.md


def torchinfo_bytes(name: str) -> int:
    """torchinfo's "Forward/backward pass size" in bytes, at batch 1, on the CPU."""
    import torchinfo

    gm = archspec.build(name, seed=0)
    stats = torchinfo.summary(gm, input_size=(1, *archspec.expand(name).input_shape), verbose=0, mode="train")
    return stats.total_output_bytes


def main() -> None:  # pragma: no cover - regenerates the tables of docs/memory.md
    print("| spec | batch | analytic (B) | measured, GPU dropout kernel (B) | ratio | measured as on CPU (B) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ZOO:
        for batch in (1, 8):
            m = measure(name, batch)
            print(f"| {name} | {batch} | {m['analytic']:,} | {m['gpu_kernel']:,} | "
                  f"{m['analytic'] / m['gpu_kernel']:.4f} | {m['cpu_kernel']:,} | "
                  f"{m['analytic'] / m['cpu_kernel']:.4f} |")
    print()
    print("| spec | batch | forward_peak_bytes | measured peak | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in ZOO:
        for batch in (1, 8):
            analytic = archspec.summarize(name, batch=batch).totals.forward_peak_bytes
            measured = measure_forward_peak(name, batch)
            print(f"| {name} | {batch} | {analytic:,} | {measured:,} | {analytic / measured:.4f} |")
    try:
        import torchinfo  # noqa: F401
    except ImportError:
        return
    print()
    print("| spec | measured (B) | torchinfo (B) | torchinfo / measured | in MiB: measured | torchinfo 'MB' |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("vgg16", "resnet50"):
        m = measure(name, 1)
        info = torchinfo_bytes(name)
        print(f"| {name} | {m['cpu_kernel']:,} | {info:,} | {info / m['cpu_kernel']:.3f} | "
              f"{m['cpu_kernel'] / 2**20:.2f} | {info / 1e6:.2f} |")


if __name__ == "__main__":
    main()


def test_a_frozen_layer_after_a_trained_one_keeps_what_torch_keeps(spec_file):
    """A frozen conv or batch norm keeps its input all the same; a frozen linear layer does not."""
    text = """
        archspec: 1
        name: tail
        input: [3, 8, 8]
        freeze: [{frozen}]
        layers:
          - conv2d: {{out: 4, kernel: 3}}
          - conv2d: {{out: 4, kernel: 3}}
          - batchnorm2d
          - flatten
          - linear: {{out: 5}}
          - linear: {{out: 5}}
    """
    for frozen in ("conv2", "bn1", "fc2"):
        path = spec_file(text.format(frozen=frozen), f"{frozen}.yaml")
        analytic = archspec.summarize(path, batch=2).totals.saved_bytes
        gm = archspec.build(path).train()
        assert analytic == measure_saved(gm, torch.randn(2, 3, 8, 8)), frozen
