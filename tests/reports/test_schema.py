from __future__ import annotations

import pytest

from attnpotts.errors import ValidationError
from attnpotts.reports import SchemaError, get_path, iter_errors, validate

SCHEMA = {
    "type": "object",
    "required": ["name", "values", "stage"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z]+$"},
        "values": {"type": "array", "minItems": 1, "items": {"type": "number", "minimum": 0}},
        "stage": {"enum": ["done", "skipped"]},
        "count": {"type": "integer", "exclusiveMinimum": 0, "maximum": 10},
        "maybe": {"type": ["number", "null"]},
        "either": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["x"]}]},
        "map": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
}


def test_valid_document_passes() -> None:
    validate(
        {"name": "ab", "values": [0, 1.5], "stage": "done", "count": 3, "maybe": None,
         "either": {"x": 1}, "map": {"a": True}},
        SCHEMA,
    )


@pytest.mark.parametrize(
    ("doc", "path", "fragment"),
    [
        ({"values": [1], "stage": "done"}, "name", "required"),
        ({"name": "AB", "values": [1], "stage": "done"}, "name", "does not match"),
        ({"name": "a", "values": [], "stage": "done"}, "values", "at least 1"),
        ({"name": "a", "values": [1, -1], "stage": "done"}, "values[1]", ">= 0"),
        ({"name": "a", "values": [True], "stage": "done"}, "values[0]", "expected number"),
        ({"name": "a", "values": [float("nan")], "stage": "done"}, "values[0]", "expected number"),
        ({"name": "a", "values": [1], "stage": "running"}, "stage", "one of"),
        ({"name": "a", "values": [1], "stage": "done", "count": 0}, "count", "> 0"),
        ({"name": "a", "values": [1], "stage": "done", "count": 1.5}, "count", "integer"),
        ({"name": "a", "values": [1], "stage": "done", "extra": 1}, "extra", "unexpected key"),
        ({"name": "a", "values": [1], "stage": "done", "either": {}}, "either", "none of"),
        ({"name": "a", "values": [1], "stage": "done", "map": {"k": 1}}, "map.k", "boolean"),
    ],
)
def test_each_violation_is_reported_with_its_path(doc: dict, path: str, fragment: str) -> None:
    errors = list(iter_errors(doc, SCHEMA))
    assert any(p == path and fragment in m for p, m in errors), errors
    with pytest.raises(SchemaError, match=fragment):
        validate(doc, SCHEMA)


def test_unknown_schema_keyword_is_an_error() -> None:
    with pytest.raises(ValidationError, match="unsupported keyword"):
        validate({}, {"type": "object", "propertys": {}})


def test_get_path() -> None:
    doc = {"a": {"b": [10, {"c": 3}]}}
    assert get_path(doc, "a.b.1.c") == 3
    assert get_path(doc, "a.b.0") == 10
    with pytest.raises(KeyError, match=r"a\.x"):
        get_path(doc, "a.x")
