"""The layer catalogue's building blocks: argument kinds, the LayerType base and the registry.

Every layer type is one subclass of ``LayerType`` registered with ``@register``. The class
declares everything every stage needs: its arguments (each with its JSON Schema fragment and
its coercion rule side by side), shape rule, parameter count, MACs, what autograd saves for
backward, receptive-field rule, diagram family, and (lazily) its torch constructor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..text import did_you_mean
from ..validator import FINITE_MESSAGE, is_non_finite

Shape = tuple[int, ...]  # one sample's tensor shape, batch excluded: (C, H, W) or (features,)
REQUIRED = object()
EXPRESSION_SCHEMA = {"type": "string", "pattern": r"\$", "description": "a $ expression"}


class ShapeError(ValueError):
    """A layer cannot accept its input shape; the message says what was expected and found."""


class ArgError(ValueError):
    """An argument value of the wrong kind; the message says what was expected and found."""


def fmt_shape(shape: Shape | None) -> str:
    return "?" if shape is None else "×".join(str(d) for d in shape)


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {_short(repr(value))}"
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"list {_short(repr(value))}"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


def _short(text: str, limit: int = 60) -> str:
    """A value's text, cut short: a message quotes what it found, not a whole document."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------- argument kinds


@dataclass(frozen=True)
class Int:
    minimum: int | None = None

    def schema(self) -> dict:
        s: dict = {"type": "integer"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        return s

    def coerce(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ArgError(f"expected an integer, found {_found(value)}")
        if self.minimum is not None and value < self.minimum:
            raise ArgError(f"expected an integer >= {self.minimum}, found {value}")
        return value


@dataclass(frozen=True)
class Float:
    minimum: float | None = None
    maximum: float | None = None

    def schema(self) -> dict:
        s: dict = {"type": "number"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return s

    def coerce(self, value: Any) -> float:
        if is_non_finite(value):
            raise ArgError(f"{FINITE_MESSAGE}, found {value}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgError(f"expected a number, found {_found(value)}")
        if self.minimum is not None and value < self.minimum:
            raise ArgError(f"expected a number >= {self.minimum}, found {value}")
        if self.maximum is not None and value > self.maximum:
            raise ArgError(f"expected a number <= {self.maximum}, found {value}")
        return float(value)


@dataclass(frozen=True)
class Bool:
    def schema(self) -> dict:
        return {"type": "boolean"}

    def coerce(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ArgError(f"expected true or false, found {_found(value)}")
        return value


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]

    def schema(self) -> dict:
        return {"enum": list(self.values)}

    def coerce(self, value: Any) -> str:
        if value not in self.values:
            raise ArgError(
                f"expected one of {', '.join(self.values)}; found {_found(value)}"
                + did_you_mean(value, self.values)
            )
        return value


@dataclass(frozen=True)
class Pair:
    """An int for both spatial dimensions, or [height, width]."""

    minimum: int = 1

    def schema(self) -> dict:
        item = {"type": "integer", "minimum": self.minimum}
        return {"oneOf": [item, {"type": "array", "items": item, "minItems": 2, "maxItems": 2}]}

    def coerce(self, value: Any) -> tuple[int, int]:
        one = Int(self.minimum)
        if isinstance(value, list):
            if len(value) != 2:
                raise ArgError(f"expected an integer or [height, width], found {_found(value)}")
            return (one.coerce(value[0]), one.coerce(value[1]))
        try:
            v = one.coerce(value)
        except ArgError:
            raise ArgError(f"expected an integer >= {self.minimum} or [height, width], found {_found(value)}") from None
        return (v, v)


PADDING_MODES = ("valid", "same", "full")


@dataclass(frozen=True)
class Padding:
    """valid | same | full | int | [h, w] | [top, bottom, left, right] (P_h-, P_h+, P_w-, P_w+).

    ``numeric``: the sizes only, without the modes (zero_pad2d).
    """

    numeric: bool = False

    def schema(self) -> dict:
        n = {"type": "integer", "minimum": 0}
        sizes = [n, {"type": "array", "items": n, "minItems": 2, "maxItems": 2},
                 {"type": "array", "items": n, "minItems": 4, "maxItems": 4}]
        return {"oneOf": sizes if self.numeric else [{"enum": list(PADDING_MODES)}, *sizes]}

    def coerce(self, value: Any) -> str | tuple[int, int, int, int]:
        if isinstance(value, str) and not self.numeric:
            return Enum(PADDING_MODES).coerce(value)
        n = Int(0)
        if isinstance(value, list):
            if len(value) == 2:
                h, w = n.coerce(value[0]), n.coerce(value[1])
                return (h, h, w, w)
            if len(value) == 4:
                t, b, l, r = (n.coerce(v) for v in value)
                return (t, b, l, r)
            raise ArgError(f"expected padding as [h, w] or [top, bottom, left, right], found {_found(value)}")
        try:
            p = n.coerce(value)
        except ArgError:
            modes = "" if self.numeric else "valid, same, full, "
            raise ArgError(
                f"expected {modes}an integer, [h, w] or [top, bottom, left, right]; found {_found(value)}"
            ) from None
        return (p, p, p, p)


@dataclass(frozen=True)
class Axes:
    """A list of axes of one sample's shape, e.g. [1, 2, 0]."""

    def schema(self) -> dict:
        return {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 4}

    def coerce(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= 4:
            raise ArgError(f"expected a list of 1 to 4 axes like [1, 2, 0], found {_found(value)}")
        return tuple(Int(0).coerce(v) for v in value)


@dataclass(frozen=True)
class Kernels:
    """Fixed weights: a kernel name (sobel_x, ...), a matrix, or a list of them, one per output."""

    def schema(self) -> dict:
        from ..kernels import KERNELS

        name = {"enum": sorted(KERNELS)}
        row = {"type": "array", "minItems": 1, "items": {"type": "number"}}
        matrix = {"type": "array", "minItems": 1, "items": row}
        return {"anyOf": [name, matrix, {"type": "array", "minItems": 1, "items": {"anyOf": [name, matrix]}}]}

    def coerce(self, value: Any):
        from ..kernels import resolve

        if value is None:
            return None
        try:
            return tuple(tuple(tuple(row) for row in k) for k in resolve(value))
        except ValueError as exc:
            raise ArgError(str(exc)) from None


@dataclass(frozen=True)
class Arg:
    kind: Any
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def schema(self) -> dict:
        s: dict[str, Any] = {"anyOf": [self.kind.schema(), EXPRESSION_SCHEMA]}
        if self.doc:
            s["description"] = self.doc
        if not self.required:
            s["default"] = self.default
        return s


# ---------------------------------------------------------------- what the stages exchange


@dataclass(frozen=True)
class Saved:
    """One tensor autograd keeps for backward: an input, the output, or a tensor of its own."""

    what: str  # "input", "output" or "own"
    index: int = 0  # which input, for "input"
    numel: int = 0  # per sample, for "own"
    itemsize: int | None = None  # bytes per element for "own"; None = the activation dtype
    per_batch: bool = True  # False for per-channel statistics whose size ignores the batch
    only_if_trained: bool = False  # kept only for this layer's own weight gradient (torch skips it when frozen)


@dataclass(frozen=True)
class Field:
    """Receptive field of one output position, per spatial axis (height, width).

    size: input pixels seen; jump: input pixels between neighbouring outputs; start: input
    coordinate of the centre of the first output's field (may be negative with padding).
    """

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    start: tuple[float, float] = (0.5, 0.5)

    def window(self, kernel, stride, pad_before, dilation=(1, 1)) -> "Field":
        size, jump, start = [], [], []
        for a in range(2):
            k_eff = dilation[a] * (kernel[a] - 1) + 1
            # after an upsampling the jump is a fraction: a window then sees a whole number of pixels
            size.append(math.ceil(self.size[a] + (k_eff - 1) * self.jump[a]))
            start.append(self.start[a] + ((k_eff - 1) / 2 - pad_before[a]) * self.jump[a])
            jump.append(self.jump[a] * stride[a])
        return Field(tuple(size), tuple(jump), tuple(start))

    def whole(self, spatial: tuple[int, int]) -> "Field":
        """The field of an output that sees the whole (H, W) map."""
        return self.window(spatial, spatial, (0, 0))


@dataclass(frozen=True)
class Call:
    """A torch function applied to a node's inputs (an fx call_function node), for layers without state."""

    function: Any
    kwargs: dict = field(default_factory=dict)
    list_input: bool = False  # pass the inputs as one list, as torch.cat wants
    weight: Any = None  # a tensor the compiler holds as a parameter at the node's own path and passes
    #                     first: its state_dict key is the path itself (ConvNeXt's ...0.layer_scale)


@dataclass(frozen=True)
class ParamCount:
    weights: int = 0
    biases: int = 0
    buffers: int = 0  # running statistics: state, not parameters
    weight_formula: str = ""  # as CS231n's VGGNet table writes it: "(3*3*3)*64"

    @property
    def total(self) -> int:
        return self.weights + self.biases


# ---------------------------------------------------------------- the registry


REGISTRY: dict[str, "LayerType"] = {}
ALIASES: dict[str, str] = {}
FAMILIES = ("input", "conv", "pool", "norm", "activation", "dense", "regularization", "reshape", "merge")


def register(cls: type["LayerType"]) -> type["LayerType"]:
    """Class decorator: add one layer type (an instance of ``cls``) to the catalogue."""
    layer = cls()
    assert layer.name not in REGISTRY, f"layer type {layer.name} registered twice"
    assert layer.family in FAMILIES, f"{layer.name}: unknown family {layer.family}"
    REGISTRY[layer.name] = layer
    for alias in layer.aliases:
        ALIASES[alias] = layer.name
    return cls


def lookup(type_name: str) -> "LayerType | None":
    return REGISTRY.get(ALIASES.get(type_name, type_name))


def lookup_known(type_name: str) -> "LayerType":
    """The entry of a type name already checked (every node of a built graph): KeyError otherwise."""
    layer = lookup(type_name)
    if layer is None:
        raise KeyError(f"unknown layer type {type_name!r}")
    return layer


def all_type_names() -> list[str]:
    return sorted(list(REGISTRY) + list(ALIASES))


class LayerType:
    """One catalogue entry. Subclasses override only what differs from these defaults."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str]
    prefix: ClassVar[str] = ""  # auto-name stem: conv -> conv1, conv2, ...
    doc: ClassVar[str] = ""
    args: ClassVar[dict[str, Arg]] = {}
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...] | None] = None  # accepted input ranks, None = any
    view: ClassVar[bool] = False  # output shares its input's storage (no new memory)
    exact_saved: ClassVar[bool] = True  # False where "saved" is an estimate of a composite op
    example_args: ClassVar[dict] = {}  # values of required arguments for docs/layers.md's example
    short_name: ClassVar[str] = ""  # the word diagrams print ("conv" for conv2d); "" = the name
    glyph: ClassVar[str] = ""  # a merge drawn as a symbol in diagrams ("+" for add), "" = a box
    glyph_words: ClassVar[str] = ""  # what a diagram's legend says for the glyph ("addition")
    affine_words: ClassVar[tuple[str, str]] = ("weights", "bias")  # what the learned pair is called

    @property
    def stem(self) -> str:
        return self.prefix or self.name

    # -- arguments
    def coerce_args(self, raw: dict) -> tuple[dict, list[tuple[str, str]]]:
        """Apply defaults and coerce; returns (args, [(arg name, problem), ...])."""
        out, problems = {}, []
        for key, value in raw.items():
            if key not in self.args:
                problems.append((key, f"unknown argument '{key}' for {self.name}" + did_you_mean(key, self.args)
                                 + (f"; it takes {', '.join(self.args)}" if self.args else "; it takes none")))
                continue
            try:
                out[key] = self.args[key].kind.coerce(value)
            except ArgError as exc:
                problems.append((key, f"{self.name}.{key}: {exc}"))
        for key, arg in self.args.items():
            if key not in raw:
                if arg.required:
                    problems.append(("", f"{self.name} needs '{key}' ({arg.doc})"))
                else:
                    out[key] = None if arg.default is None else arg.kind.coerce(arg.default)
        return out, problems

    def outputs(self, a: dict) -> int:
        """How many tensors the item gives: more than 1 for a chunk into parts (``name.0``, ``name.1``)."""
        return 1

    def check_inputs(self, inputs: list[Shape]) -> None:
        if self.ranks is not None:
            for shape in inputs:
                if len(shape) not in self.ranks:
                    raise ShapeError(self.rank_message(shape, self.ranks))

    def rank_message(self, shape: Shape, ranks: tuple[int, ...]) -> str:
        wanted = " or ".join({1: "(features,)", 2: "(C, L)", 3: "(C, H, W)"}[r] for r in ranks)
        return f"{self.name} expects an input of shape {wanted}, found {fmt_shape(shape)}"

    # -- the analytic rules
    def output_shape(self, a: dict, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def param_count(self, a: dict, inputs: list[Shape], out: Shape) -> ParamCount:
        return ParamCount()

    def macs(self, a: dict, inputs: list[Shape], out: Shape) -> int:
        """Multiply-accumulates per sample (conv and linear only, torchvision's convention)."""
        return 0

    def saved(self, a: dict, inputs: list[Shape], out: Shape) -> list[Saved]:
        """Tensors autograd keeps for backward in training (parameters excluded)."""
        return []

    def receptive_field(self, a: dict, fields: list[Field], inputs: list[Shape], out: Shape) -> Field:
        return fields[0]

    def torch(self, a: dict, inputs: list[Shape], out: Shape):
        """The torch.nn.Module (or a ``Call`` of a torch function) computing this layer.

        Imports torch lazily: only the compiler calls it.
        """
        raise NotImplementedError(f"{self.name} has no torch constructor")

    def key_params(self, a: dict) -> str:
        """A short description of the arguments for tables and diagrams ("3×3 /2, 64")."""
        return ""

    def label_params(self, a: dict) -> str:
        """The arguments a diagram box prints under its shape: the key ones without what the shape shows."""
        return self.key_params(a)

    def slide_label(self, a: dict) -> str:
        """The layer as the CS231n VGG-16 slide names it (CONV3-64, POOL2, FC); others in capitals."""
        return self.name.upper()

    def schema(self) -> dict:
        s: dict = {
            "type": ["object", "null"],
            "properties": {k: arg.schema() for k, arg in self.args.items()},
            "additionalProperties": False,
        }
        required = [k for k, arg in self.args.items() if arg.required]
        if required:
            s["required"] = required
            s["type"] = "object"
        if self.doc:
            s["description"] = self.doc
        return s
