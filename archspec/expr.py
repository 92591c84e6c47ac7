"""Safe expressions in specs: ``$c``, ``$c * 4``, ``${c // 2}``, ``${2 if i == 0 else 1}``.

The text is parsed with Python's ``ast`` module and interpreted by walking a whitelist of
node types: numbers, strings, names, arithmetic, comparisons, boolean logic, conditional
expressions and a few pure functions. Nothing is ever passed to ``eval``; attribute access,
subscripts, calls of anything but the whitelisted functions, and lambdas are all refused.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any, Callable, Mapping

MAX_EXPRESSION_CHARS = 500
MAX_MAGNITUDE = 1 << 62  # results beyond this are refused, so no expression can exhaust memory

_WRAPPED = re.compile(r"^\$\{(.*)\}$", re.S)
_DOLLAR_NAME = re.compile(r"\$(?=[A-Za-z_])")
_PART = re.compile(r"\$\{([^{}]*)\}")  # one ${...} part of a template (expressions hold no braces)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "int": int,
    "round": round,
    "ceil": math.ceil,
    "floor": math.floor,
}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says why."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "$" in value


def expression_text(value: str) -> str:
    """``"${c // 2}"`` -> ``"c // 2"``;  ``"$c * 4"`` -> ``"c * 4"``."""
    wrapped = _WRAPPED.match(value.strip())
    if wrapped:
        return wrapped.group(1).strip()
    return _DOLLAR_NAME.sub("", value).strip()


def is_template(value: Any) -> bool:
    """``"block${k}-${i}"``: ``${...}`` parts amid other text, which no single expression can be."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    parts = _PART.findall(text)
    return len(parts) > 1 or (len(parts) == 1 and _PART.sub("", text) != "")


def render(value: str, scope: Mapping[str, Any]) -> str:
    """A template's text with each part's value written in: ``"block${k}-${i}"`` -> ``"block1-0"``."""
    if len(value) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"template is longer than {MAX_EXPRESSION_CHARS} characters")
    return _PART.sub(lambda part: str(evaluate("${" + part.group(1) + "}", scope)), value.strip())


def names_in(value: str) -> set[str]:
    """The parameter names an expression or template reads (empty if it does not parse)."""
    if is_template(value):
        return set().union(*(names_in("${" + part + "}") for part in _PART.findall(value)))
    try:
        tree = ast.parse(expression_text(value), mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in FUNCTIONS}


def evaluate(value: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate one ``$`` expression against the parameters in ``scope``."""
    text = expression_text(value)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    if not text:
        raise ExpressionError(f"empty expression {value!r}")
    try:
        tree = ast.parse(text, mode="eval")
        return _Interpreter(scope).visit(tree.body)
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {value!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression is nested too deeply") from None


def _checked(result: Any) -> Any:
    if isinstance(result, complex):  # (-8) ** 0.5
        raise ExpressionError("expression result is not a real number")
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        if isinstance(result, float) and not math.isfinite(result):
            raise ExpressionError("expression result is not a finite number")
        if abs(result) > MAX_MAGNITUDE:
            raise ExpressionError("expression result is too large")
    return result


class _Interpreter:
    def __init__(self, scope: Mapping[str, Any]):
        self.scope = scope

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(f"'{type(node).__name__}' is not allowed in expressions")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return _checked(node.value)
        raise ExpressionError(f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.scope:
            return self.scope[node.id]
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        raise ExpressionError(f"undefined name '{node.id}'")

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator '{type(node.op).__name__}' is not allowed")
        left, right = self.visit(node.left), self.visit(node.right)
        for side in (left, right):
            if not isinstance(side, (int, float)) or isinstance(side, bool):
                if not (op is operator.add and isinstance(left, str) and isinstance(right, str)):
                    raise ExpressionError(f"arithmetic on a non-number: {side!r}")
        if op is operator.pow and (abs(right) > 64 or abs(left) > MAX_MAGNITUDE):
            raise ExpressionError("exponent is too large")
        try:
            return _checked(op(left, right))
        except ZeroDivisionError:
            raise ExpressionError("division by zero") from None
        except OverflowError:
            raise ExpressionError("expression result is too large") from None

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        op = _UNARY.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator '{type(node.op).__name__}' is not allowed")
        return _checked(op(self.visit(node.operand)))

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = self.visit(value)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = self.visit(value)
            if result:
                return result
        return result

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise ExpressionError(f"comparison '{type(op_node).__name__}' is not allowed")
            right = self.visit(right_node)
            try:
                if not op(left, right):
                    return False
            except TypeError:
                raise ExpressionError(f"cannot compare {left!r} with {right!r}") from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ExpressionError("only min, max, abs, int, round, ceil and floor may be called")
        args = [self.visit(arg) for arg in node.args]
        if node.func.id == "round" and len(args) > 1 and isinstance(args[1], int) and abs(args[1]) > 64:
            raise ExpressionError("round(): too many digits")  # round(1, -10**18) would compute 10**10**18
        try:
            return _checked(FUNCTIONS[node.func.id](*args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExpressionError(f"{node.func.id}(): {exc}") from None

    def visit_List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List
