"""Reading API requests: JSON bodies, query parameters, ids. Anything malformed is a 400
(:class:`~crm.core.errors.BadRequest`) before it reaches the record service or the database."""
import json
import math

from crm.core.errors import BadRequest, NotFound
from crm.core.records import MAX_LIMIT

MAX_INT = 2**63 - 1          # ids and integers must fit a 64-bit column
MAX_DEPTH = 64               # nesting of JSON bodies
LIST_PARAMS = ("q", "sort", "limit", "cursor", "count")
IGNORED_PARAMS = ("_LOCALE_",)  # Pyramid's locale switch, never a filter


def json_body(request, required=True):
    """The request body as a JSON object (dict). Empty bodies give ``{}`` unless ``required``."""
    raw = request.body
    if not raw.strip():
        if required:
            raise BadRequest("the request body must be a JSON object")
        return {}
    try:
        data = json.loads(raw.decode(request.charset or "utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, LookupError, RecursionError) as e:
        raise BadRequest(f"malformed JSON body: {_short(e)}")
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    check_value(data)
    return data


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _short(error):
    return str(error).splitlines()[0][:200]


def check_value(value, where="body", depth=0):
    """Refuse what no column can hold: NUL characters and unpaired surrogates in text, integers
    beyond 64 bits, non-finite numbers, absurd nesting."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"{where}: nested too deeply")
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise BadRequest(f"{where}: number out of range", {_field(where): "number out of range"})
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest(f"{where}: number out of range", {_field(where): "number out of range"})
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where)
            check_value(item, f"{where}.{key}" if where != "body" else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_value(item, f"{where}.{i}", depth + 1)


def _field(where):
    return where.split(".")[0]


def check_text(text, where):
    if "\x00" in text:
        raise BadRequest(f"{where}: NUL characters are not allowed", {_field(where): "NUL characters are not allowed"})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{where}: not valid Unicode text", {_field(where): "not valid Unicode text"})


def query_params(request):
    """The query string as (key, value) pairs, checked like body text."""
    try:
        pairs = list(request.GET.items())
    except UnicodeDecodeError:
        raise BadRequest("the query string is not valid UTF-8")
    for key, value in pairs:
        check_text(key, key)
        check_text(value, key)
    return pairs


class ListParams:
    """``GET /api/v1/{entity}`` parameters: the reserved ones, and every other one a filter."""

    def __init__(self, request):
        self.options, self.filters = {}, []
        for key, value in query_params(request):
            if key in LIST_PARAMS:
                if key in self.options:
                    raise BadRequest(f"parameter {key} given twice", {key: "given twice"})
                self.options[key] = value
            elif key not in IGNORED_PARAMS:
                self.filters.append((key, value))
        self.q = self.options.get("q") or None
        self.sort = self.options.get("sort") or None
        self.cursor = self.options.get("cursor") or None
        self.limit = limit(self.options.get("limit"), default=50)
        self.count = flag(self.options.get("count"), "count")


class FilterPairs:
    """(key, value) pairs with the ``items()`` that :func:`crm.core.query.parse_filters` reads;
    a key may repeat (``amount__gte=1&amount__lte=9``): every condition applies."""

    def __init__(self, pairs):
        self.pairs = pairs

    def items(self):
        return list(self.pairs)


def flag(raw, name):
    if raw is None:
        return False
    value = {"true": True, "1": True, "false": False, "0": False}.get(raw.lower())
    if value is None:
        raise BadRequest(f"{name} must be true or false", {name: "true or false"})
    return value


def limit(raw, default):
    """A page size: 1 to 500 (the record service's MAX_LIMIT)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a number from 1 to {MAX_LIMIT}", {"limit": f"1 to {MAX_LIMIT}"})
    return int(raw)


def record_id(raw, entity_name="record"):
    """A record id from the path or a body: a positive 64-bit integer, else 404 (no such record)."""
    if isinstance(raw, bool):
        raise NotFound(f"no {entity_name} {raw!r}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit():
        value = int(raw)
    else:
        raise NotFound(f"no {entity_name} {raw!r}")
    if not 1 <= value <= MAX_INT:
        raise NotFound(f"no {entity_name} {raw!r}")
    return value


def body_id(body, key):
    """An id a JSON body names (``survivor``, ``duplicate``): an integer, else 400."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be a record id (an integer)", {key: "an integer record id is required"})
    return value


def version(body):
    """The optional ``version`` a PATCH carries (the version the caller read)."""
    value = body.pop("version", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest("version must be the record's version number", {"version": "an integer"})
    return value
