"""The expression language: shared cases through Python and the browser evaluator, plus API checks."""

import datetime
import json
import pathlib
import re
import shutil
import subprocess
from decimal import Decimal

import pytest

from crm.core import expressions
from crm.core.expressions import ExpressionError, evaluate, fields_used, truthy, validate

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES_FILE = ROOT / "tests" / "expression_cases.json"
JS_FILE = ROOT / "ui" / "static" / "js" / "expressions.js"
CASES = json.loads(CASES_FILE.read_text(encoding="utf-8"))
IDS = [f"{i:03d}-{case['name']}" for i, case in enumerate(CASES)]


def _is_number(v):
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def same(actual, expected, rel=None):
    """Structural equality; numbers compare by value (exactly, or within ``rel`` for JS floats)."""
    if expected is None or isinstance(expected, bool):
        return actual is expected or (isinstance(actual, bool) and actual == expected)
    if _is_number(expected):
        if not _is_number(actual):
            return False
        a, e = Decimal(repr(actual) if isinstance(actual, float) else actual), Decimal(str(expected))
        return a == e if rel is None else abs(a - e) <= Decimal(rel) * max(abs(e), Decimal(1))
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            same(a, e, rel) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            same(actual[k], expected[k], rel) for k in expected)
    return type(actual) is type(expected) and actual == expected


def _today(case):
    return datetime.date.fromisoformat(case["today"]) if "today" in case else None


def test_there_are_enough_shared_cases():
    assert len(CASES) >= 80
    assert len(set(IDS)) == len(IDS)
    used = set()
    for case in CASES:
        def visit(op, args, path):
            used.add(op)
        expressions._walk(case["expr"], "", visit)
    assert set(expressions.OPERATORS) <= used


@pytest.mark.parametrize("literal_numbers", ["float", "decimal"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shared_case_python(case, literal_numbers):
    if literal_numbers == "decimal":  # metadata loaded with Decimal numbers must behave the same
        case = json.loads(json.dumps(case), parse_float=Decimal)
    if case.get("error"):
        with pytest.raises(ExpressionError):
            evaluate(case["expr"], case["data"], today=_today(case))
        return
    result = evaluate(case["expr"], case["data"], today=_today(case))
    assert same(result, case["expect"]), f"got {result!r}, expected {case['expect']!r}"


NODE_SCRIPT = r"""
const CrmExpr = require(process.argv[1]);
const cases = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const out = cases.map(function (c) {
  try {
    const v = CrmExpr.evaluate(c.expr, c.data, c.today);
    return { value: v === undefined ? null : v };
  } catch (e) {
    return { error: String(e && e.message), expression_error: e instanceof CrmExpr.ExpressionError };
  }
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def js_results():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the browser evaluator cannot be checked")
    proc = subprocess.run([node, "-e", NODE_SCRIPT, str(JS_FILE), str(CASES_FILE)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == len(CASES)
    return results


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_shared_case_javascript(index, js_results):
    case, result = CASES[index], js_results[index]
    if case.get("error"):
        assert result.get("expression_error"), f"expected an ExpressionError, got {result!r}"
        return
    assert "error" not in result, result["error"]
    assert same(result["value"], case["expect"], rel="1e-12"), \
        f"got {result['value']!r}, expected {case['expect']!r}"


def test_js_exposes_the_browser_global():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = ("global.window = {}; require(process.argv[1]);"
              "process.stdout.write(JSON.stringify([typeof window.CrmExpr.evaluate, typeof window.CrmExpr.truthy,"
              " window.CrmExpr.truthy([]), window.CrmExpr.truthy('0')]))")
    proc = subprocess.run([node, "-e", script, str(JS_FILE)], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout) == ["function", "function", False, True], proc.stderr


def test_no_eval_in_either_evaluator():
    for path in (ROOT / "core" / "expressions.py", JS_FILE):
        source = path.read_text(encoding="utf-8")
        banned = re.search(r"(?<![\w.])(eval|exec|compile|Function|__import__|getattr|setTimeout)\s*\(", source)
        assert banned is None, f"{banned and banned.group(0)} in {path.name}"


# ---------------------------------------------------------------- validate()

def test_validate_ok():
    expr = {"and": [{"==": [{"var": "type"}, "company"]}, {">": [{"var": "owner.age"}, 3]}]}
    assert validate(expr) == []
    assert validate(expr, known_fields={"type", "owner"}) == []


def test_validate_unknown_operator_pointer():
    errors = validate({"and": [True, {"==": [{"bogus": [1]}, 2]}]})
    assert len(errors) == 1
    assert isinstance(errors[0], ExpressionError)
    assert errors[0].path == "/and/1/==/0"
    assert "bogus" in str(errors[0])


def test_validate_pointer_escapes_slash_and_bare_args():
    assert [e.path for e in validate({"/": [1, {"nope": []}]})] == ["/~1/1"]
    assert [e.path for e in validate({"!": {"nope": []}})] == ["/!"]
    assert [e.path for e in validate({"in": ["a", [1, {"nope": 1}]]})] == ["/in/1/1"]


def test_validate_unknown_field():
    expr = {"or": [{"var": "type"}, {"var": ["owner.name", "x"]}, {"var": "ghost.deep"}]}
    errors = validate(expr, known_fields=["type", "owner"])
    assert [(e.path, e.message) for e in errors] == [("/or/2", 'unknown field "ghost"')]
    assert validate(expr) == []  # known_fields=None skips the check


def test_validate_wrong_arity():
    errors = validate({"if": [{"between": [1, 2]}, "a", {"today": [1]}]})
    assert sorted(e.path for e in errors) == ["/if/0", "/if/2"]
    assert all("argument" in e.message for e in errors)
    assert [e.path for e in validate({"-": [1, 2, 3]})] == [""]
    assert [e.path for e in validate({"var": []})] == [""]


def test_validate_reports_several_errors_and_dynamic_var():
    errors = validate([{"x": 1}, {"var": {"var": "a"}}, {"y": 2}])
    assert [e.path for e in errors] == ["/0", "/1", "/2"]


@pytest.mark.parametrize("malformed", [
    {}, {"a": 1, "b": 2}, [], None, 3.5, "text", {1: 2}, {"var": None}, {"var": [None]},
    {"and": None}, {"==": {"==": {"==": 1}}}, {(1, 2): 3}, {"if": []}, {"var": ["a", "b", "c"]},
    {"round": [1, 2, 3]}, object(),
])
def test_validate_never_raises(malformed):
    assert isinstance(validate(malformed, known_fields=["a"]), list)


def test_validate_deeply_nested_does_not_raise():
    expr = True
    for _ in range(5000):
        expr = {"!": expr}
    errors = validate(expr)
    assert isinstance(errors, list)
    if errors:
        with pytest.raises(ExpressionError):
            evaluate(expr, {})


# ---------------------------------------------------------------- fields_used()

def test_fields_used():
    expr = {"if": [{"==": [{"var": "type"}, "company"]},
                   {"concat": [{"var": "owner.name"}, {"var": ["nick", {"var": "fallback"}]}]},
                   {"in": [{"var": "stage"}, ["a", {"var": "other.x"}]]}]}
    assert fields_used(expr) == {"type", "owner", "nick", "fallback", "stage", "other"}
    assert fields_used(42) == set()
    assert fields_used({"var": ""}) == set()
    assert fields_used({"bogus": [{"var": "inside"}]}) == {"inside"}


# ---------------------------------------------------------------- safety

@pytest.mark.parametrize("attack", [
    {"__import__": ["os"]},
    {"eval": "1+1"},
    {"exec": ["import os"]},
    {"__class__": []},
    {"__getattribute__": ["__class__"]},
    {"getattr": [{"var": ""}, "__class__"]},
    {"==": [{"system": ["ls"]}, 0]},
    {"if": [False, {"__import__": "os"}, 1]},
])
def test_attacks_raise_expression_error(attack):
    with pytest.raises(ExpressionError):
        evaluate(attack, {"x": 1})


def test_var_reads_only_dict_keys():
    class Record:
        secret = "s"
    assert evaluate({"var": "obj.secret"}, {"obj": Record()}) is None
    assert evaluate({"var": "__class__"}, {"a": 1}) is None
    assert evaluate({"var": "items"}, {"a": 1}) is None


def test_expression_error_is_value_error():
    with pytest.raises(ValueError) as info:
        evaluate({"and": [True, {"nope": 1}]}, {})
    assert info.value.path == "/and/1"


# ---------------------------------------------------------------- numbers, dates, truthiness

def test_decimal_exactness():
    assert evaluate({"+": [0.1, 0.2]}, {}) == Decimal("0.3")
    assert isinstance(evaluate({"+": [0.1, 0.2]}, {}), Decimal)
    assert evaluate({"+": [{"var": "a"}, {"var": "b"}]}, {"a": Decimal("0.1"), "b": "0.2"}) == Decimal("0.3")
    assert evaluate({"*": ["19.99", 3]}, {}) == Decimal("59.97")
    assert evaluate({"-": [{"+": [0.1, 0.2]}, 0.3]}, {}) == 0
    assert evaluate({"round": [{"/": [10, 3]}, 2]}, {}) == Decimal("3.33")
    assert evaluate({"round": ["2.675", 2]}, {}) == Decimal("2.68")  # float round() would give 2.67


def test_python_dates_in_data():
    data = {"due": datetime.date(2026, 11, 20), "at": datetime.datetime(2026, 11, 23, 9, 30)}
    today = datetime.date(2026, 11, 23)
    assert evaluate({"<": [{"var": "due"}, {"today": []}]}, data, today=today) is True
    assert evaluate({"==": [{"var": "due"}, "2026-11-20"]}, data) is True
    assert evaluate({"days_between": [{"var": "due"}, {"var": "at"}]}, data) == 3
    assert evaluate({"add_days": [{"var": "at"}, 1]}, data) == "2026-11-24"
    assert evaluate({"between": [{"var": "at"}, "2026-11-23", "2026-11-24"]}, data) is True
    assert evaluate({"today": []}, {}, today=datetime.datetime(2026, 1, 2, 3, 4)) == "2026-01-02"
    assert evaluate({"today": []}, {}) == datetime.date.today().isoformat()


def test_truthy():
    for falsy in (None, False, 0, 0.0, Decimal("0"), Decimal("0.00"), "", [], float("nan")):
        assert truthy(falsy) is False, falsy
    for true in (True, 1, -1, Decimal("0.01"), "0", "false", [0], {"a": 1}, datetime.date(2026, 1, 1)):
        assert truthy(true) is True, true


def test_data_value_types():
    data = {"i": 3, "f": 3.0, "d": Decimal("3.00"), "s": "3", "b": True, "n": None}
    for name in ("i", "f", "d", "s"):
        assert evaluate({"==": [{"var": name}, 3]}, data) is True, name
    assert evaluate({"==": [{"var": "b"}, 1]}, data) is False
    assert evaluate({"+": [{"var": "i"}, {"var": "f"}, {"var": "d"}, {"var": "s"}]}, data) == 12
    assert evaluate({"concat": [{"var": "d"}, "|", {"var": "f"}, "|", {"var": "n"}]}, data) == "3|3|"
    assert evaluate({"var": ""}, data) is data


def test_evaluate_accepts_missing_data():
    assert evaluate({"var": ["x", 1]}, None) == 1
