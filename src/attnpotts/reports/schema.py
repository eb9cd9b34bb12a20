"""A small JSON-schema validator (a subset of JSON Schema, by hand: no extra dependency).

Supported keywords: ``type`` (``object``, ``array``, ``string``, ``number``, ``integer``,
``boolean``, ``null``, or a list of them), ``properties``, ``required``, ``additionalProperties``
(``False`` or a schema), ``items``, ``minItems``, ``enum``, ``const``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``pattern``, ``anyOf``. Unknown keywords are an error in the schema (so a typo
in a schema cannot silently accept everything).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ValidationError

__all__ = ["SchemaError", "get_path", "iter_errors", "validate"]

_KNOWN = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "enum",
    "const", "minimum", "maximum", "exclusiveMinimum", "pattern", "anyOf", "description",
}


class SchemaError(ValidationError):
    """A document does not match its schema; ``errors`` lists ``(path, message)``."""

    def __init__(self, errors: list[tuple[str, str]], *, what: str = "document") -> None:
        self.errors = errors
        shown = "\n".join(f"  {p or '$'}: {m}" for p, m in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{what} does not match its schema ({len(errors)} error(s)):\n{shown}{more}")


def _type_ok(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, list | tuple)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        )
    raise ValidationError(f"schema uses unknown type {name!r}")


def _join(path: str, part: str | int) -> str:
    return f"{path}[{part}]" if isinstance(part, int) else (f"{path}.{part}" if path else part)


def iter_errors(doc: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(json path, message)`` for every violation of ``schema`` by ``doc``."""
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValidationError(f"schema at {path or '$'} uses unsupported keyword(s) {sorted(unknown)}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(doc, t) for t in types):
            yield path, f"expected {' or '.join(types)}, got {type(doc).__name__} {doc!r:.60}"
            return
    if "const" in schema and doc != schema["const"]:
        yield path, f"expected {schema['const']!r}, got {doc!r:.60}"
    if "enum" in schema and doc not in schema["enum"]:
        yield path, f"expected one of {schema['enum']!r}, got {doc!r:.60}"
    if isinstance(doc, int | float) and not isinstance(doc, bool):
        if "minimum" in schema and doc < schema["minimum"]:
            yield path, f"must be >= {schema['minimum']}, got {doc}"
        if "maximum" in schema and doc > schema["maximum"]:
            yield path, f"must be <= {schema['maximum']}, got {doc}"
        if "exclusiveMinimum" in schema and doc <= schema["exclusiveMinimum"]:
            yield path, f"must be > {schema['exclusiveMinimum']}, got {doc}"
    if isinstance(doc, str) and "pattern" in schema and not re.search(schema["pattern"], doc):
        yield path, f"does not match /{schema['pattern']}/: {doc!r:.60}"
    if "anyOf" in schema:
        branches = [list(iter_errors(doc, sub, path)) for sub in schema["anyOf"]]
        if all(branches):
            best = min(branches, key=len)
            yield path, "matches none of the alternatives; closest: " + "; ".join(
                f"{p or '$'}: {m}" for p, m in best[:3]
            )
    if isinstance(doc, Mapping):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in doc:
                yield _join(path, key), "required key is missing"
        extra = schema.get("additionalProperties", True)
        for key, value in doc.items():
            if key in props:
                yield from iter_errors(value, props[key], _join(path, key))
            elif extra is False:
                yield _join(path, key), f"unexpected key (allowed: {', '.join(sorted(props))})"
            elif isinstance(extra, Mapping):
                yield from iter_errors(value, extra, _join(path, key))
    if isinstance(doc, list | tuple):
        if "minItems" in schema and len(doc) < schema["minItems"]:
            yield path, f"needs at least {schema['minItems']} item(s), got {len(doc)}"
        if "items" in schema:
            for i, item in enumerate(doc):
                yield from iter_errors(item, schema["items"], _join(path, i))


def validate(doc: Any, schema: Mapping[str, Any], *, what: str = "document") -> None:
    """Raise :class:`SchemaError` listing every violation of ``schema`` by ``doc``."""
    errors = list(iter_errors(doc, schema))
    if errors:
        raise SchemaError(errors, what=what)


def get_path(doc: Any, key: str) -> Any:
    """The value at dotted ``key`` (``"stages.depth.models.0.test_loss"``; digits index lists).

    Raises:
        KeyError: the path does not exist (the message names the first missing part).
    """
    node = doc
    walked = []
    for part in key.split("."):
        walked.append(part)
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(f"no {'.'.join(walked)!r} in the document")
    return node
