"""Reports: self-contained HTML (figures embedded, numbers traceable to the results JSON) and a
small JSON-schema validator for results documents."""

from .html import Fragment, Link, Num, Report, Section, extract_numbers
from .schema import SchemaError, get_path, iter_errors, validate

__all__ = [
    "Fragment",
    "Link",
    "Num",
    "Report",
    "SchemaError",
    "Section",
    "extract_numbers",
    "get_path",
    "iter_errors",
    "validate",
]
