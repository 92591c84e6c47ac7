"""Write tests/golden/torchvision/NAME.json: facts about torchvision's classification networks.

Run once, by hand, with a Python that has torchvision (it is never a test dependency):

    /path/to/python-with-torchvision tests/torchvision_facts.py [NAME ...]
    /path/to/python-with-torchvision tests/torchvision_facts.py --references [NAME ...]   # checks reference_nets.py

Per network: its input (the crop size of torchvision's published weights), the state_dict's
keys and shapes in order (buffers included), the parameter count, the multiply-accumulates of
its convolutions and linear layers at that input (counted by forward hooks on a meta-device
pass, batch 1), and what torchvision's weights metadata publishes (parameters, GFLOPS, which
torchvision counts as conv and linear multiply-accumulates, top-1 and top-5 on ImageNet-1k).
The tests compare the specs with these files; they never import torchvision.
"""
from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

OUT = Path(__file__).resolve().parent / "golden" / "torchvision"

# network -> constructor arguments besides weights=None
NETWORKS = {
    "alexnet": {}, "vgg11": {}, "vgg16": {}, "vgg19": {}, "vgg16_bn": {},
    "resnet18": {}, "resnet34": {}, "resnet50": {}, "resnet101": {}, "resnet152": {},
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
    "densenet121": {}, "densenet169": {}, "densenet201": {},
    "squeezenet1_0": {}, "squeezenet1_1": {},
    "resnext50_32x4d": {}, "wide_resnet50_2": {},
    "mnasnet1_0": {}, "mobilenet_v2": {}, "mobilenet_v3_small": {}, "mobilenet_v3_large": {},
    **{f"efficientnet_b{i}": {} for i in range(8)},
    "shufflenet_v2_x1_0": {}, "regnet_x_400mf": {}, "regnet_y_400mf": {}, "convnext_tiny": {},
}


def count_macs(model, shape, torch) -> int:
    """Conv and linear multiply-accumulates of one sample, by forward hooks on the meta device."""
    total = [0]

    def conv(m, inputs, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear(m, inputs, out):
        total[0] += out.numel() * m.in_features

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv)
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(linear)
    model = model.to("meta").eval()
    with torch.no_grad():
        model(torch.empty(1, *shape, device="meta"))
    return total[0]


def facts(name: str, kwargs: dict) -> dict:
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("m"))
    import torch
    import torchvision
    from torchvision import models

    enum = models.get_model_weights(name)
    weights = enum.DEFAULT
    crop = weights.transforms().crop_size[0]
    model = models.get_model(name, weights=None, **kwargs)
    state = model.state_dict()
    return {
        "name": name,
        "torchvision": torchvision.__version__,
        "constructor": {"weights": None, **kwargs},
        "input": [3, crop, crop],
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count_macs(model, (3, crop, crop), torch),
        "published": [published(w) for w in enum],  # the first is IMAGENET1K_V1
        "state_dict": [[key, list(t.shape)] for key, t in state.items()],
    }


def published(weights) -> dict:
    """What one entry of torchvision's weights enum publishes."""
    meta = weights.meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    return {"weights": str(weights), "url": weights.url, "params": meta["num_params"],
            "gflops": meta["_ops"], "crop": weights.transforms().crop_size[0],
            "top1": metrics["acc@1"], "top5": metrics["acc@5"]}


def write(data: dict) -> None:
    """One state_dict entry a line, so a diff reads key by key."""
    head = {k: v for k, v in data.items() if k != "state_dict"}
    lines = [json.dumps(head)[:-1] + ', "state_dict": [']
    entries = [json.dumps(entry) for entry in data["state_dict"]]
    lines += [f"  {e}," for e in entries[:-1]] + [f"  {entries[-1]}", "]}"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{data['name']}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_references(names: list[str]) -> None:
    """The hand-written references of tests/reference_nets.py (all, or those named) against
    torchvision itself: the same keys, and the same outputs for the same random state_dict (an
    oracle for the oracle)."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("m"))
    import torch
    from torchvision import models

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_nets import REFERENCES, random_state

    for name in names or REFERENCES:
        make = REFERENCES[name]
        ours, theirs = make().eval(), models.get_model(name, weights=None).eval()
        state = random_state(theirs)
        ours.load_state_dict(state, strict=True)
        theirs.load_state_dict(state, strict=True)
        x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            difference = (ours(x) - theirs(x)).abs().max().item()
        print(f"{name}: the reference's keys are torchvision's; largest output difference {difference:g}")


def main(names: list[str]) -> None:
    if names[:1] == ["--references"]:
        return check_references(names[1:])
    for name in names or NETWORKS:
        data = facts(name, NETWORKS[name])
        write(data)
        print(f"{name}: {data['params']:,} parameters, {data['macs'] / 1e9:.3f} GMACs "
              f"(published {data['published'][0]['gflops']}), {len(data['state_dict'])} state_dict entries")


if __name__ == "__main__":
    main(sys.argv[1:])
