"""The safe expression evaluator: what it computes, and everything it refuses (fast, never eval)."""
from __future__ import annotations


import pytest

from archspec.expr import (MAX_EXPRESSION_CHARS, ExpressionError, evaluate, expression_text, is_expression,
                           is_template, names_in, render)

SCOPE = {"c": 64, "n": 3, "i": 0, "width": 0.5, "name": "wide", "flag": True}


def ev(text: str, **scope):
    return evaluate(text, {**SCOPE, **scope})


def refused(text: str, **scope) -> str:
    with pytest.raises(ExpressionError) as info:
        ev(text, **scope)
    return str(info.value)


# ---------------------------------------------------------------- forms


@pytest.mark.parametrize("text, inner", [
    ("$c", "c"),
    ("$c * 4", "c * 4"),
    ("${c // 2}", "c // 2"),
    ("  ${ c }  ", "c"),
    ("${2 if i == 0 else 1}", "2 if i == 0 else 1"),
    ("$c + $n", "c + n"),
])
def test_expression_text(text, inner):
    assert expression_text(text) == inner


def test_is_expression():
    assert is_expression("$c") and is_expression("${1}")
    assert not is_expression("conv") and not is_expression(3) and not is_expression(None)


# ---------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("text, value", [
    ("$c", 64),
    ("$c * 4", 256),
    ("${c + 1}", 65),
    ("${c - 65}", -1),
    ("${c / 128}", 0.5),
    ("${c // 3}", 21),
    ("${-c // 3}", -22),
    ("${c % 10}", 4),
    ("${2 ** 10}", 1024),
    ("${2 ** -1}", 0.5),
    ("${(c + 1) * 2}", 130),
    ("${c * width}", 32.0),
    ("${-c}", -64),
    ("${+c}", 64),
    ("${1.5 * 2}", 3.0),
    ("$c + $n", 67),
    ("${'a' + 'b'}", "ab"),
    ("${name}", "wide"),
    ("${[c, c]}", [64, 64]),
    ("${(1, 2)}", [1, 2]),
])
def test_arithmetic(text, value):
    result = ev(text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("text, value", [
    ("${c == 64}", True),
    ("${c != 64}", False),
    ("${c < 100}", True),
    ("${c <= 63}", False),
    ("${c > 63}", True),
    ("${c >= 65}", False),
    ("${0 < i < 1}", False),
    ("${0 <= i < 1}", True),
    ("${name == 'wide'}", True),
    ("${not flag}", False),
    ("${flag and c}", 64),
    ("${i and c}", 0),
    ("${i or n}", 3),
    ("${i or 0}", 0),
    ("${true}", True),
    ("${False}", False),
])
def test_comparisons_and_logic(text, value):
    assert ev(text) == value


@pytest.mark.parametrize("i, stride", [(0, 2), (1, 1), (2, 1)])
def test_conditional(i, stride):
    assert ev("${2 if i == 0 else 1}", i=i) == stride


def test_conditional_evaluates_only_the_branch_taken():
    assert ev("${1 if flag else undefined_name}") == 1
    assert ev("${flag or 1 // 0}") is True


@pytest.mark.parametrize("text, value", [
    ("${min(c, 32)}", 32),
    ("${max(c, 128)}", 128),
    ("${max([1, 5, 2])}", 5),
    ("${min(3, n, c)}", 3),
    ("${abs(-c)}", 64),
    ("${int(c * width)}", 32),
    ("${int(7.9)}", 7),
    ("${round(2.4)}", 2),
    ("${round(c * 0.3)}", 19),
    ("${round(123, -1)}", 120),
    ("${ceil(c / 3)}", 22),
    ("${floor(c / 3)}", 21),
    ("${max(8, int(c * width) // 8 * 8)}", 32),
])
def test_functions(text, value):
    result = ev(text)
    assert result == value and type(result) is type(value)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("text, message", [
    ("${().__class__}", "'Attribute' is not allowed in expressions"),
    ("${c.real}", "'Attribute' is not allowed in expressions"),
    ("${().__class__.__bases__[0].__subclasses__()}",
     "only min, max, abs, int, round, ceil and floor may be called"),
    ("${__import__('os').system('true')}", "only min, max, abs, int, round, ceil and floor may be called"),
    ("${open('/etc/passwd')}", "only min, max, abs, int, round, ceil and floor may be called"),
    ("${eval('1')}", "only min, max, abs, int, round, ceil and floor may be called"),
    ("${getattr(c, 'real')}", "only min, max, abs, int, round, ceil and floor may be called"),
    ("${max(1, 2, key=abs)}", "only min, max, abs, int, round, ceil and floor may be called"),
    ("${(lambda: 1)()}", "only min, max, abs, int, round, ceil and floor may be called"),
    ("${lambda: 1}", "'Lambda' is not allowed in expressions"),
    ("${[1, 2][0]}", "'Subscript' is not allowed in expressions"),
    ("${name[0]}", "'Subscript' is not allowed in expressions"),
    ("${[x for x in [1]]}", "'ListComp' is not allowed in expressions"),
    ("${{1: 2}}", "'Dict' is not allowed in expressions"),
    ("${{1, 2}}", "'Set' is not allowed in expressions"),
    ("${f'{c}'}", "'JoinedStr' is not allowed in expressions"),
    ("${(x := 1)}", "'NamedExpr' is not allowed in expressions"),
    ("${...}", "constant Ellipsis is not allowed"),
    ("${b'x'}", "constant b'x' is not allowed"),
    ("${1j}", "constant 1j is not allowed"),
    ("${c in [64]}", "comparison 'In' is not allowed"),
    ("${c is 64}", "comparison 'Is' is not allowed"),
    ("${~c}", "operator 'Invert' is not allowed"),
    ("${c << 2}", "operator 'LShift' is not allowed"),
    ("${c & 1}", "operator 'BitAnd' is not allowed"),
    ("${c @ c}", "operator 'MatMult' is not allowed"),
])
def test_refused_constructs(text, message):
    assert refused(text) == message


def test_nothing_is_ever_passed_to_eval(monkeypatch):
    import builtins

    def no_eval(*args, **kwargs):  # pragma: no cover - reaching this is the failure
        raise AssertionError("eval or exec was called")

    monkeypatch.setattr(builtins, "eval", no_eval)
    monkeypatch.setattr(builtins, "exec", no_eval)
    assert ev("${max(c // 2, 8) if n > 1 else 4}") == 32
    assert refused("${().__class__}") == "'Attribute' is not allowed in expressions"


@pytest.mark.parametrize("text", [
    "${10 ** 10 ** 10}",
    "${9 ** 9 ** 9 ** 9}",
    "${2 ** 100000}",
    "${(c * 1000) ** 1000}",
    "${round(1, -10 ** 18)}",
])
def test_huge_powers_are_refused_before_computing(text, monkeypatch):
    # the work is bounded, not timed: no intermediate result the evaluator sees is a huge number,
    # and round() is never called with a huge number of digits
    import archspec.expr as expr

    seen, checked = [], expr._checked
    monkeypatch.setattr(expr, "_checked", lambda value: seen.append(value) or checked(value))
    monkeypatch.setitem(expr.FUNCTIONS, "round", lambda x, n=None: seen.append(n) or round(x, n))
    message = refused(text)
    assert message in ("exponent is too large", "expression result is too large", "round(): too many digits")
    assert all(abs(v).bit_length() <= 256 for v in seen if isinstance(v, int))


@pytest.mark.parametrize("text, message", [
    ("${2 ** 64 * 2 ** 64}", "expression result is too large"),
    ("${10 ** 19}", "expression result is too large"),
    ("${1e19}", "expression result is too large"),
    ("${1e308 ** 2}", "expression result is too large"),
    ("${int(1e300)}", "expression result is too large"),
    ("${ceil(1e300)}", "expression result is too large"),
    ("${(-8) ** 0.5}", "expression result is not a real number"),
    ("${99999999999999999999999}", "expression result is too large"),
])
def test_results_out_of_range(text, message):
    assert refused(text) == message


def test_big_but_bounded_values_are_fine():
    assert ev("${2 ** 62}") == 2 ** 62
    assert ev("${10 ** 18}") == 10 ** 18


@pytest.mark.parametrize("text", ["${c / 0}", "${c // 0}", "${c % 0}", "${1.5 // 0}", "${c / (n - 3)}"])
def test_division_by_zero(text):
    assert refused(text) == "division by zero"


@pytest.mark.parametrize("text, message", [
    ("$widht", "undefined name 'widht'"),
    ("${c * k}", "undefined name 'k'"),
    ("${min(c, channels)}", "undefined name 'channels'"),
])
def test_undefined_names(text, message):
    assert refused(text) == message


def test_an_empty_scope_defines_nothing():
    with pytest.raises(ExpressionError, match="undefined name 'c'"):
        evaluate("$c", {})


@pytest.mark.parametrize("text, message", [
    ("${c * name}", "arithmetic on a non-number: 'wide'"),
    ("${'a' * 1000000000}", "arithmetic on a non-number: 'a'"),
    ("${[1] * 1000000000}", "arithmetic on a non-number: [1]"),
    ("${flag + 1}", "arithmetic on a non-number: True"),
    ("${c < name}", "cannot compare 64 with 'wide'"),
    ("${min()}", "min(): min expected at least 1 argument, got 0"),
    ("${max([])}", "max(): max() arg is an empty sequence"),
    ("${ceil(name)}", "ceil(): must be real number, not str"),
])
def test_type_mistakes(text, message):
    assert refused(text) == message


@pytest.mark.parametrize("text, message", [
    ("${}", "empty expression '${}'"),
    ("$", "cannot parse expression '$': invalid syntax"),
    ("${c +}", "cannot parse expression '${c +}': invalid syntax"),
    ("${c c}", "cannot parse expression '${c c}': invalid syntax"),  # Python may add a hint after
    ("${(c}", "cannot parse expression '${(c}': '(' was never closed"),
])
def test_syntax_mistakes(text, message):
    assert refused(text).startswith(message)


def test_long_expressions_are_refused():
    text = "${" + "1 + " * (MAX_EXPRESSION_CHARS // 4) + "1}"
    assert refused(text) == f"expression is longer than {MAX_EXPRESSION_CHARS} characters"


def test_deeply_nested_expressions_are_refused_not_crashing():
    def deep(n, f):  # evaluate well inside the stack, as inside a deep spec
        return f() if n == 0 else deep(n - 1, f)

    text = "${" + "-" * (MAX_EXPRESSION_CHARS - 10) + "1}"
    with pytest.raises(ExpressionError, match="nested too deeply"):
        deep(600, lambda: ev(text))
    assert ev("${" + "(" * 100 + "c" + ")" * 100 + "}") == 64


# ---------------------------------------------------------------- names_in


@pytest.mark.parametrize("text, names", [
    ("$c", {"c"}),
    ("$c * $n", {"c", "n"}),
    ("${max(c, 2) // groups}", {"c", "groups"}),
    ("${2 if i == 0 else stride}", {"i", "stride"}),
    ("${min(1, 2)}", set()),
    ("${42}", set()),
    ("${c +}", set()),  # does not parse: no names
    ("${round(ceil(floor(abs(int(x)))))}", {"x"}),
])
def test_names_in(text, names):
    assert names_in(text) == names


# ---------------------------------------------------------------- templates (names: "block${k}-${i}")


@pytest.mark.parametrize("text, expected", [
    ("block${k}-${i}", "block2-0"),
    ("${k}${i}", "20"),
    ("stage${k * 10 + i}", "stage20"),
])
def test_a_template_writes_each_part_in(text, expected):
    assert is_template(text)
    assert render(text, {"k": 2, "i": 0}) == expected


def test_the_names_a_template_reads():
    assert names_in("block${k}-${i}") == {"k", "i"}


@pytest.mark.parametrize("text", ["$k", "${k}", "  ${k + 1}  ", "$k * 2", "${2 if i == 0 else 1}", "plain"])
def test_a_single_expression_is_no_template(text):
    assert not is_template(text)


def test_a_templates_part_is_checked_as_any_expression():
    with pytest.raises(ExpressionError, match="undefined name 'j'"):
        render("a${j}", {"i": 0})
    with pytest.raises(ExpressionError, match="not allowed"):
        render("a${x.y}", {"x": 1})
