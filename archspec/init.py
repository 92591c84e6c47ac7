"""Weight initialisation schemes for conv and linear layers, by name, per layer or spec-wide.

``init: kaiming`` or ``init: {normal: {std: 0.01}}``. A scheme sets the weights and zeroes the
biases; ``default`` keeps torch's own initialisation. Fixed kernels (``weights:``) are never
re-initialised. Normalisation layers keep gamma = 1, beta = 0.
"""
from __future__ import annotations

from typing import Any

# scheme -> (its arguments with defaults, a one-line description)
SCHEMES: dict[str, tuple[dict[str, Any], str]] = {
    "default": ({}, "torch's own initialisation (kaiming-uniform with a = sqrt(5))"),
    "kaiming": ({"mode": "fan_in", "nonlinearity": "relu"}, "He normal: std = sqrt(2 / fan)"),
    "kaiming_uniform": ({"mode": "fan_in", "nonlinearity": "relu"}, "He uniform"),
    "xavier": ({"gain": 1.0}, "Glorot uniform"),
    "xavier_normal": ({"gain": 1.0}, "Glorot normal"),
    "normal": ({"mean": 0.0, "std": 0.01}, "normal(mean, std)"),
    "uniform": ({"low": -0.05, "high": 0.05}, "uniform(low, high)"),
    "zeros": ({}, "all zeros"),
    "constant": ({"value": 0.0}, "every weight = value"),
}
MODES = ("fan_in", "fan_out")
NONLINEARITIES = ("relu", "leaky_relu", "linear", "sigmoid", "tanh")


def schema() -> dict:
    number = {"type": "number"}
    options = {
        name: {"type": "object", "additionalProperties": False,
               "properties": {k: ({"enum": list(MODES)} if k == "mode" else {"enum": list(NONLINEARITIES)}
                                  if k == "nonlinearity" else number) for k in args}}
        for name, (args, _) in SCHEMES.items()
    }
    return {"description": "weight initialisation: " + ", ".join(SCHEMES),
            "anyOf": [{"enum": list(SCHEMES)},
                      {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": options,
                       "additionalProperties": False}]}


def parse(value: Any) -> tuple[str, dict[str, Any]]:
    """``"kaiming"`` or ``{"normal": {"std": 0.02}}`` -> (scheme, full arguments); ValueError if wrong."""
    from .text import did_you_mean

    if isinstance(value, dict) and len(value) == 1:
        (name, given), = value.items()
        given = given or {}
    else:
        name, given = value, {}
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(f"unknown init {value!r}" + (did_you_mean(name, SCHEMES) if isinstance(name, str) else "")
                         + f"; choose one of {', '.join(SCHEMES)}")
    defaults, _ = SCHEMES[name]
    if not isinstance(given, dict):
        raise ValueError(f"init {name}: expected a mapping of arguments, found {given!r}")
    unknown = set(given) - set(defaults)
    if unknown:
        key = sorted(unknown)[0]
        raise ValueError(f"init {name} has no argument '{key}'" + did_you_mean(key, defaults)
                         + (f"; it takes {', '.join(defaults)}" if defaults else "; it takes none"))
    args = {**defaults, **given}
    for key, v in args.items():
        allowed = MODES if key == "mode" else NONLINEARITIES if key == "nonlinearity" else None
        if allowed and v not in allowed:
            raise ValueError(f"init {name}.{key}: expected one of {', '.join(allowed)}, found {v!r}")
        if allowed is None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"init {name}.{key}: expected a number, found {v!r}")
    return name, args


def apply(module, scheme: tuple[str, dict[str, Any]]) -> None:
    """Initialise a conv or linear module's weight (and zero its bias) in place."""
    import torch
    from torch import nn

    name, args = scheme
    weight = getattr(module, "weight", None)
    if name == "default" or weight is None or not isinstance(module, (nn.Conv2d, nn.Linear)):
        return
    with torch.no_grad():
        if name == "kaiming":
            nn.init.kaiming_normal_(weight, mode=args["mode"], nonlinearity=args["nonlinearity"])
        elif name == "kaiming_uniform":
            nn.init.kaiming_uniform_(weight, mode=args["mode"], nonlinearity=args["nonlinearity"])
        elif name == "xavier":
            nn.init.xavier_uniform_(weight, gain=args["gain"])
        elif name == "xavier_normal":
            nn.init.xavier_normal_(weight, gain=args["gain"])
        elif name == "normal":
            nn.init.normal_(weight, mean=args["mean"], std=args["std"])
        elif name == "uniform":
            nn.init.uniform_(weight, a=args["low"], b=args["high"])
        elif name == "zeros":
            nn.init.zeros_(weight)
        elif name == "constant":
            nn.init.constant_(weight, args["value"])
        if module.bias is not None:
            module.bias.zero_()
