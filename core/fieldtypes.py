"""Field types: for each, its database column, its JSON Schema (used to validate input and to
publish the OpenAPI document, so both always agree) and its conversion between JSON and Python.
"""
import datetime as dt
import re
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

import sqlalchemy as sa

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NUMBER_PATTERN = r"^-?\d+(\.\d+)?$"
JSON_SAFE_INTEGER = 2.0**53  # beyond it a JSON reader's double no longer holds every integer


class FieldType:
    """Base: a nullable string stored in a VARCHAR."""
    stored = True          # has a column of its own
    system_filled = False  # value made by the record service, never by input
    length = 255

    def column_type(self, field):
        return sa.String(field.spec.get("max_length", self.length))

    def json_schema(self, field):
        schema = {"type": ["string", "null"], "maxLength": field.spec.get("max_length", self.length)}
        if "pattern" in field.spec:
            schema["pattern"] = field.spec["pattern"]
        return schema

    def to_python(self, value, field):
        """JSON (already schema-valid) → value for the database. Raise ValueError with a message."""
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def to_json(self, value):
        return value


class Text(FieldType):
    pass


class LongText(FieldType):
    def column_type(self, field):
        return sa.Text()

    def json_schema(self, field):
        return {"type": ["string", "null"], **({"maxLength": field.spec["max_length"]} if "max_length" in field.spec else {})}


class Email(FieldType):
    length = 254
    PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

    def json_schema(self, field):
        return {"type": ["string", "null"], "maxLength": self.length, "format": "email", "pattern": self.PATTERN + "|^$"}


class Phone(FieldType):
    length = 40

    def json_schema(self, field):
        return {"type": ["string", "null"], "maxLength": self.length, "pattern": r"^[0-9+()\-\s#*转]*$"}


class Url(FieldType):
    length = 500

    def json_schema(self, field):
        return {"type": ["string", "null"], "maxLength": self.length, "pattern": r"^(https?://\S+)?$"}


class Code(FieldType):
    """Short codes: select values, regions, mnemonic, autonumber."""
    length = 64

    def column_type(self, field):
        return sa.String(self.length)

    def json_schema(self, field):
        return {"type": ["string", "null"], "maxLength": self.length}


class Generated(Code):
    system_filled = True

    def json_schema(self, field):
        return {"type": ["string", "null"], "readOnly": True}


class Integer(FieldType):
    def column_type(self, field):
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")

    def json_schema(self, field):
        schema = {"type": ["integer", "null"]}
        if "min" in field.spec:
            schema["minimum"] = field.spec["min"]
        if "max" in field.spec:
            schema["maximum"] = field.spec["max"]
        return schema

    def to_python(self, value, field):
        """Whole numbers as int: computed integer fields arrive as Decimal from the evaluator."""
        if isinstance(value, (Decimal, float)) and not isinstance(value, bool):
            if value != value.__round__():
                raise ValueError("not a whole number")
            return int(value)
        return value


class Reference(Integer):
    """link, user, department, file, image: the id of another record."""

    def column_type(self, field):
        return ID_TYPE

    def json_schema(self, field):
        return {"type": ["integer", "null"], "minimum": 1}


class Rating(Integer):
    def column_type(self, field):
        return sa.SmallInteger()

    def json_schema(self, field):
        return {"type": ["integer", "null"], "minimum": 1, "maximum": 5}


class Number(FieldType):
    """decimal, money, percent: exact decimals; JSON numbers or numeric strings in, numbers out."""
    precision, scale = 18, 2
    decimals = 2  # places kept from input when the field sets no scale

    def column_type(self, field):
        return sa.Numeric(field.spec.get("precision", self.precision), field.spec.get("scale", self.scale))

    def json_schema(self, field):
        schema = {"type": ["number", "string", "null"], "pattern": NUMBER_PATTERN}
        if "min" in field.spec:
            schema["minimum"] = field.spec["min"]
        if "max" in field.spec:
            schema["maximum"] = field.spec["max"]
        return schema

    def to_python(self, value, field):
        if value is None or value == "":
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError("not a number")
        if not number.is_finite():
            raise ValueError("not a number")
        if number.adjusted() >= field.spec.get("precision", self.precision) - field.spec.get("scale", self.scale):
            raise ValueError("too large")
        for bound, test in (("min", lambda b: number < Decimal(str(b))), ("max", lambda b: number > Decimal(str(b)))):
            if bound in field.spec and test(field.spec[bound]):
                raise ValueError(f"must be {'at least' if bound == 'min' else 'at most'} {field.spec[bound]}")
        return quantize(number, field.spec.get("scale", self.decimals))

    def to_json(self, value):
        """A JSON number: an integer when whole (and exact in a double), else a float. By way of
        ``float``, three times faster than Decimal's comparisons (13 a customer, 650 an API page)."""
        if value is None:
            return None
        value = float(value)
        return int(value) if value.is_integer() and -JSON_SAFE_INTEGER < value < JSON_SAFE_INTEGER else value


def quantize(number, decimals):
    """Round half away from zero to ``decimals`` places (the way people round money)."""
    return number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


class Money(Number):
    """Stored with 4 places so that a decimals setting (0–4) can change without a migration."""
    precision, scale, decimals = 20, 4, 2


class Percent(Number):
    precision, scale, decimals = 9, 4, 4


class Boolean(FieldType):
    def column_type(self, field):
        return sa.Boolean()

    def json_schema(self, field):
        return {"type": ["boolean", "null"]}


class Date(FieldType):
    def column_type(self, field):
        return sa.Date()

    def json_schema(self, field):
        return {"type": ["string", "null"], "format": "date", "pattern": r"^(\d{4}-\d{2}-\d{2})?$"}

    def to_python(self, value, field):
        if not value:
            return None
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a date (YYYY-MM-DD)")

    def to_json(self, value):
        return value.isoformat() if value else None


class DateTime(Date):
    def column_type(self, field):
        return sa.DateTime()

    def json_schema(self, field):
        return {"type": ["string", "null"], "format": "date-time",
                "pattern": r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"}

    def to_python(self, value, field):
        if not value:
            return None
        if isinstance(value, dt.datetime):
            parsed = value
        else:
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("not a date and time (YYYY-MM-DDTHH:MM:SS)")
        if parsed.tzinfo is not None:  # stored as naive UTC
            try:
                parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
            except OverflowError:
                raise ValueError("out of range")
        return parsed.replace(microsecond=0)


class Time(Date):
    def column_type(self, field):
        return sa.Time()

    def json_schema(self, field):
        return {"type": ["string", "null"], "format": "time", "pattern": r"^(\d{2}:\d{2}(:\d{2})?)?$"}

    def to_python(self, value, field):
        if not value:
            return None
        if isinstance(value, dt.time):
            return value
        try:
            return dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError("not a time (HH:MM)")


class Json(FieldType):
    def column_type(self, field):
        return sa.JSON()

    def json_schema(self, field):
        return {}


class MultiSelect(Json):
    def json_schema(self, field):
        return {"type": ["array", "null"], "items": {"type": "string", "maxLength": 64}, "uniqueItems": True}

    def to_python(self, value, field):
        return list(value) if value else None


class Links(FieldType):
    """Many links: kept in the crm_links table, not in a column."""
    stored = False

    def json_schema(self, field):
        return {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}, "uniqueItems": True}

    def to_python(self, value, field):
        return list(value or [])


class Table(FieldType):
    """Child rows, kept in the child entity's table."""
    stored = False

    def json_schema(self, field):
        return {"type": ["array", "null"], "items": {"type": "object"}}

    def to_python(self, value, field):
        return list(value or [])


class Computed(FieldType):
    system_filled = True

    def _result(self, field):
        return TYPES[field.spec["result_type"]]

    def column_type(self, field):
        return self._result(field).column_type(field)

    def json_schema(self, field):
        return {**self._result(field).json_schema(field), "readOnly": True}

    def to_python(self, value, field):
        return self._result(field).to_python(value, field)

    def to_json(self, value):
        if isinstance(value, Decimal):
            return Number().to_json(value)
        return value.isoformat() if isinstance(value, dt.date) else value


TYPES = {
    "text": Text(), "textarea": LongText(), "richtext": LongText(),
    "email": Email(), "phone": Phone(), "url": Url(),
    "integer": Integer(), "decimal": Number(), "money": Money(), "percent": Percent(),
    "boolean": Boolean(), "date": Date(), "datetime": DateTime(), "time": Time(),
    "select": Code(), "region": Code(), "multiselect": MultiSelect(),
    "link": Reference(), "user": Reference(), "department": Reference(),
    "file": Reference(), "image": Reference(), "rating": Rating(),
    "links": Links(), "table": Table(),
    "mnemonic": Generated(), "autonumber": Generated(),
    "json": Json(), "computed": Computed(),
}

# kinds of fields, for the code that must treat them alike
REFERENCE_TYPES = {"link": None, "user": "crm_users", "department": "crm_departments", "file": "crm_attachments", "image": "crm_attachments"}
DICTIONARY_TYPES = {"select", "multiselect", "region"}


def is_identifier(name):
    return bool(re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name))
