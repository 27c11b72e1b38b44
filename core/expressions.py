"""The CRM expression language: a small, safe, JSON Logic style evaluator.

An expression is a JSON value. A dict with exactly one key is an operation
``{"op": [args...]}`` (a single non-list argument may be given bare); lists
are evaluated element by element; anything else is a literal. Only the
operators in ``OPERATORS`` exist; nothing is ever passed to ``eval``.
The browser twin is ``ui/static/js/expressions.js``; both must agree on every
case in ``tests/expression_cases.json``. Reference: ``docs/expressions.md``.
"""

import datetime
import re
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

__all__ = ["ExpressionError", "OPERATORS", "evaluate", "fields_used", "truthy", "validate"]

_NUMERIC = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})([T ].*)?")
_MAX = Decimal("1.7976931348623157e308")  # largest JS number: beyond it both sides give null
_CONTEXT = Context(prec=28, traps=[InvalidOperation, DivisionByZero, Overflow])  # arithmetic
_ROUND_CONTEXT = Context(prec=400, traps=[InvalidOperation, DivisionByZero, Overflow])  # room for any _MAX


class ExpressionError(ValueError):
    """A malformed expression; ``path`` is a JSON pointer to the offending node."""

    def __init__(self, message, path=""):
        super().__init__(f"{message} (at {path or 'root'})")
        self.message = message
        self.path = path


# ---------------------------------------------------------------- value helpers

def _is_number(v):
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _num(v):
    """The Decimal for a number or numeric string; None for anything else."""
    if _is_number(v):
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    elif isinstance(v, str) and _NUMERIC.fullmatch(v.strip()):
        try:
            d = Decimal(v.strip())
        except ArithmeticError:  # an exponent beyond Decimal's range, e.g. "1e99999999999"
            return None
    else:
        return None
    return d if d.is_finite() and d.copy_abs() <= _MAX else None


def _plain(v):
    """Dates and datetimes take part in comparisons as ISO strings."""
    return v.isoformat() if isinstance(v, (datetime.date, datetime.datetime)) else v


def _date(v):
    """A calendar date from a date, datetime or ISO string (time part ignored)."""
    if isinstance(v, datetime.datetime):
        return v.date()
    if isinstance(v, datetime.date):
        return v
    m = _ISO_DATE.fullmatch(v) if isinstance(v, str) else None
    try:
        return datetime.date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        return None


def _text(v):
    """String form used by concat/lower/upper: null -> "", numbers without exponent."""
    v = _plain(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if _is_number(v):
        d = _num(v)
        return "" if d is None else "0" if d == 0 else format(d.normalize(), "f")
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return ",".join(_text(x) for x in v)
    return ""


def truthy(value):
    """JSON Logic truthiness: null, false, 0, "", [] (and NaN) are false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if _is_number(value):
        return value == value and value != 0
    if isinstance(value, (str, list)):
        return len(value) > 0
    return True


def _equal(a, b):
    a, b = _plain(a), _plain(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        x, y = _num(a), _num(b)
        return x is not None and y is not None and x == y
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return False


def _compare(a, b):
    """-1/0/1, or None when the values are not comparable (null, bool, mixed)."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if _is_number(a) or _is_number(b):
        a, b = _num(a), _num(b)
        if a is None or b is None:
            return None
    elif not (isinstance(a, str) and isinstance(b, str)):
        return None
    return (a > b) - (a < b)


def _cmp_op(test):
    def op(a, b):
        c = _compare(a, b)
        return c is not None and test(c)
    return op


def _arith(fn):
    """Coerce every operand to Decimal; any null/non-numeric operand gives null."""
    def op(*args):
        nums = [_num(a) for a in args]
        if any(n is None for n in nums):
            return None
        try:
            result = fn(*nums)
        except (ArithmeticError, ValueError):
            return None
        if result is None or result.copy_abs() > _MAX:
            return None
        return result.copy_abs() if result == 0 else result  # no "-0"
    return op


def _int_arg(d):
    return int(d) if d is not None and d == d.to_integral_value() else None


# ---------------------------------------------------------------- operators

def _var(ctx, args):
    value = ctx.data
    if args[0] != "":
        for seg in args[0].split("."):
            if isinstance(value, dict):
                value = value.get(seg)
            elif isinstance(value, list) and seg.isascii() and seg.isdigit() and int(seg) < len(value):
                value = value[int(seg)]
            else:
                value = None
            if value is None:
                break
    if value is None and len(args) > 1:
        return ctx.ev(args[1])
    return value


def _and(ctx, args):
    return all(truthy(ctx.ev(a)) for a in args)


def _or(ctx, args):
    return any(truthy(ctx.ev(a)) for a in args)


def _if(ctx, args):
    for i in range(0, len(args) - 1, 2):
        if truthy(ctx.ev(args[i])):
            return ctx.ev(args[i + 1])
    return ctx.ev(args[-1]) if len(args) % 2 else None


def _today(ctx, args):
    return ctx.today().isoformat()


def _between(x, lo, hi):
    c1, c2 = _compare(lo, x), _compare(x, hi)
    return c1 is not None and c2 is not None and c1 <= 0 and c2 <= 0


def _in(x, container):
    if isinstance(container, list):
        return any(_equal(x, item) for item in container)
    return isinstance(container, str) and isinstance(x, str) and x in container


def _empty(v):
    return v is None or (isinstance(v, (str, list)) and len(v) == 0)


def _round(x, digits=Decimal(0)):
    n = _int_arg(digits)
    if n is None or not -10 <= n <= 10:
        return None
    return x.quantize(Decimal(1).scaleb(-n), rounding=ROUND_HALF_UP, context=_ROUND_CONTEXT)


def _minus(a, b=None):
    return -a if b is None else a - b


def _div(a, b):
    return None if b == 0 else a / b


def _product(*nums):
    result = Decimal(1)
    for n in nums:
        result *= n
    return result


def _lower(v):
    return None if v is None else _text(v).lower()


def _upper(v):
    return None if v is None else _text(v).upper()


def _length(v):
    if v is None:
        return Decimal(0)
    return Decimal(len(v)) if isinstance(v, (str, list)) else None


def _days_between(d1, d2):
    d1, d2 = _date(d1), _date(d2)
    return None if d1 is None or d2 is None else Decimal((d2 - d1).days)


def _add_days(d, n):
    d, n = _date(d), _int_arg(_num(n))
    try:
        return None if d is None or n is None else (d + datetime.timedelta(days=n)).isoformat()
    except OverflowError:
        return None


#: operator name -> function. Names in _LAZY get (ctx, raw_args); the rest get evaluated values.
OPERATORS = {
    "var": _var,
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    ">": _cmp_op(lambda c: c > 0),
    ">=": _cmp_op(lambda c: c >= 0),
    "<": _cmp_op(lambda c: c < 0),
    "<=": _cmp_op(lambda c: c <= 0),
    "between": _between,
    "and": _and,
    "or": _or,
    "!": lambda v: not truthy(v),
    "if": _if,
    "in": _in,
    "empty": _empty,
    "+": _arith(lambda *n: sum(n, Decimal(0))),
    "-": _arith(_minus),
    "*": _arith(_product),
    "/": _arith(_div),
    "min": _arith(lambda *n: min(n)),
    "max": _arith(lambda *n: max(n)),
    "round": _arith(_round),
    "abs": _arith(abs),
    "concat": lambda *vals: "".join(_text(v) for v in vals),
    "lower": _lower,
    "upper": _upper,
    "length": _length,
    "today": _today,
    "days_between": _days_between,
    "add_days": _add_days,
}

_LAZY = {"var", "and", "or", "if", "today"}

#: operator name -> (minimum, maximum) number of arguments; None = any number.
ARITY = {
    "var": (1, 2), "between": (3, 3), "and": (1, None), "or": (1, None), "!": (1, 1),
    "if": (2, None), "in": (2, 2), "empty": (1, 1), "+": (1, None), "-": (1, 2),
    "*": (1, None), "/": (2, 2), "min": (1, None), "max": (1, None), "round": (1, 2),
    "abs": (1, 1), "concat": (0, None), "lower": (1, 1), "upper": (1, 1), "length": (1, 1),
    "today": (0, 0), "days_between": (2, 2), "add_days": (2, 2),
    **{op: (2, 2) for op in ("==", "!=", ">", ">=", "<", "<=")},
}


# ---------------------------------------------------------------- tree walking

def _pointer(path, token):
    return f"{path}/{str(token).replace('~', '~0').replace('/', '~1')}"


def _operation(node):
    """(op, args, [arg pointers relative to op]) for an operation node, else None."""
    if not (isinstance(node, dict) and len(node) == 1):
        return None
    (op, raw), = node.items()
    if isinstance(raw, list):
        return op, raw, [_pointer(_pointer("", op), i) for i in range(len(raw))]
    return op, [raw], [_pointer("", op)]


def _walk(node, path, visit):
    """Call visit(op, args, path) for every operation node, depth first."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, _pointer(path, i), visit)
        return
    operation = _operation(node)
    if operation is None:
        return
    op, args, pointers = operation
    visit(op, args, path)
    for i, (arg, ptr) in enumerate(zip(args, pointers)):
        if not (op == "var" and i == 0):
            _walk(arg, path + ptr, visit)


def validate(expr, known_fields=None):
    """Static check; returns a list of ExpressionError (empty when the expression is fine)."""
    errors = []
    known = None if known_fields is None else set(known_fields)

    def visit(op, args, path):
        if not isinstance(op, str) or op not in OPERATORS:
            errors.append(ExpressionError(f"unknown operator \"{op}\"", path))
            return
        low, high = ARITY[op]
        if len(args) < low or (high is not None and len(args) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            errors.append(ExpressionError(f"\"{op}\" takes {want} argument(s), got {len(args)}", path))
            return
        if op == "var":
            name = args[0]
            if not isinstance(name, str):
                errors.append(ExpressionError("\"var\" needs a literal field name (string)", path))
            elif known is not None and name and name.split(".")[0] not in known:
                errors.append(ExpressionError(f"unknown field \"{name.split('.')[0]}\"", path))

    try:
        _walk(expr, "", visit)
    except RecursionError:
        errors.append(ExpressionError("expression is nested too deeply", ""))
    return errors


def fields_used(expr):
    """First path segments of every ``var`` in the expression."""
    used = set()

    def visit(op, args, path):
        if op == "var" and args and isinstance(args[0], str) and args[0]:
            used.add(args[0].split(".")[0])

    try:
        _walk(expr, "", visit)
    except RecursionError:
        pass
    return used


class _Context:
    def __init__(self, data, today):
        self.data = data
        self._today = today

    def today(self):
        if self._today is None:
            return datetime.date.today()
        day = _date(self._today)
        if day is None:
            raise ValueError(f"today must be a date or an ISO date string, not {self._today!r}")
        return day

    def ev(self, node):
        if isinstance(node, list):
            return [self.ev(item) for item in node]
        operation = _operation(node)
        if operation is None:
            return node
        op, args, _ = operation
        if op in _LAZY:
            return OPERATORS[op](self, args)
        return OPERATORS[op](*[self.ev(a) for a in args])


_VALIDATED = {}  # id → expression: the metadata's expressions, validated once, not per record


def evaluate(expr, data, *, today=None):
    """Evaluate ``expr`` against ``data``; ``today`` (date) fixes the clock for ``today``.

    The whole tree is validated first, so a bad operator raises ExpressionError even
    in a branch that is not taken. Evaluating a valid expression never raises.
    """
    if _VALIDATED.get(id(expr)) is not expr:
        errors = validate(expr)
        if errors:
            raise errors[0]
        if len(_VALIDATED) > 10_000:
            _VALIDATED.clear()
        _VALIDATED[id(expr)] = expr  # kept, so that its id is not reused by another expression
    try:
        with localcontext(_CONTEXT):
            return _Context(data if data is not None else {}, today).ev(expr)
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", "") from None
