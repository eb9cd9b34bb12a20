"""A self-contained HTML report: sections of text, tables and figures (PNG embedded as base64).

Numbers in the text and tables are :class:`Num` values, rendered as
``<span class="num" data-key="KEY">formatted</span>``: each number carries the key of the value it
came from in the results document, so the text is always generated from a run's numbers and a test
can check every number of a report against the JSON it was built from
(:func:`extract_numbers`). Text templates use ``str.format`` fields: ``{name}``.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..storage import atomic_write_text

__all__ = ["Fragment", "Link", "Num", "Report", "Section", "extract_numbers"]


@dataclass(frozen=True)
class Num:
    """A number shown in a report, with the key it came from.

    Attributes:
        value: the number (``None`` or NaN renders as "n/a").
        key: dotted path of the value in the results document (``""``: derived, untracked).
        fmt: a format spec (``".4f"``, ``".2%"``, ``"d"``, ``".3g"``).
        unit: text shown after the number.
    """

    value: float | int | None
    key: str = ""
    fmt: str = ".4g"
    unit: str = ""

    def number(self) -> str:
        """The formatted number alone (``format(value, fmt)``, or "n/a")."""
        v = self.value
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        return format(v, self.fmt)

    def text(self) -> str:
        """The formatted number with its unit (without markup)."""
        return self.number() + (f" {self.unit}" if self.unit and self.number() != "n/a" else "")

    def html(self) -> str:
        """``<span class="num" data-key=...>number</span>`` followed by the unit."""
        key = f' data-key="{html.escape(self.key, quote=True)}"' if self.key else ""
        fmt = f' data-fmt="{html.escape(self.fmt, quote=True)}"'
        raw = "" if self.value is None else f' data-value="{self.value!r}"'
        unit = f" {html.escape(self.unit)}" if self.unit and self.number() != "n/a" else ""
        return f'<span class="num"{key}{fmt}{raw}>{html.escape(self.number())}</span>{unit}'


@dataclass(frozen=True)
class Fragment:
    """A table cell made of a template with :class:`Num` fields (several numbers in one cell)."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """A link in a table cell (e.g. to a figure of the same report: ``href="#fig-NAME"``)."""

    text: str
    href: str


def _cell(value: Any) -> str:
    if isinstance(value, Num):
        return value.html()
    if isinstance(value, Fragment):
        return _render_template(value.template, value.values)
    if isinstance(value, Link):
        return f'<a href="{html.escape(value.href, quote=True)}">{html.escape(value.text)}</a>'

    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        raise ValidationError(
            f"bare number {value!r} in a report; wrap it in Num(value, key=...) so it is traceable"
        )
    return html.escape(str(value))


def _render_template(template: str, values: dict[str, Any]) -> str:
    """Escape ``template``'s literal text and substitute rendered fields."""
    out = []
    for literal, name, spec, conv in string.Formatter().parse(template):
        out.append(html.escape(literal))
        if name is None:
            continue
        if spec or conv:
            raise ValidationError(
                f"template field {{{name}}} has a format spec; put the format into Num(fmt=...)"
            )
        if name not in values:
            raise ValidationError(f"template field {{{name}}} has no value; pass {name}=...")
        out.append(_cell(values[name]))
    return "".join(out)


@dataclass
class Section:
    """A section of a :class:`Report` (blocks in the order they were added)."""

    title: str
    anchor: str
    blocks: list[str] = field(default_factory=list)

    def text(self, template: str, **values: Any) -> Section:
        """A paragraph; ``{name}`` fields are filled from ``values`` (:class:`Num` or text)."""
        self.blocks.append(f"<p>{_render_template(template, values)}</p>")
        return self

    def bullets(self, items: list[tuple[str, dict[str, Any]]] | list[str]) -> Section:
        """A bulleted list of templates (each a string or ``(template, values)``)."""
        lis = []
        for item in items:
            template, values = (item, {}) if isinstance(item, str) else item
            lis.append(f"<li>{_render_template(template, values)}</li>")
        self.blocks.append("<ul>" + "".join(lis) + "</ul>")
        return self

    def table(self, columns: list[str], rows: list[list[Any]], *, caption: str = "", text: bool = False) -> Section:
        """A table; cells are :class:`Num`, :class:`Fragment`, :class:`Link`, text or booleans
        (``text=True``: cells aligned left, for tables of sentences)."""
        for i, row in enumerate(rows):
            if len(row) != len(columns):
                raise ValidationError(
                    f"table row {i} has {len(row)} cells, the header has {len(columns)}"
                )
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        cls = ' class="text"' if text else ""
        self.blocks.append(f"<table{cls}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def figure(self, png: bytes, *, caption: str = "", name: str = "", **values: Any) -> Section:
        """An embedded PNG figure; the caption is a template like :meth:`text`."""
        if not isinstance(png, bytes) or not png.startswith(b"\x89PNG"):
            raise ValidationError(f"figure {name!r} must be PNG bytes")
        data = base64.b64encode(png).decode("ascii")
        alt = html.escape(name or "figure", quote=True)
        cap = f"<figcaption>{_render_template(caption, values)}</figcaption>" if caption else ""
        self.blocks.append(
            f'<figure id="fig-{alt}" data-name="{alt}"><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"{cap}</figure>"
        )
        return self

    def note(self, template: str, **values: Any) -> Section:
        """A highlighted note (warnings, skipped stages)."""
        self.blocks.append(f'<p class="note">{_render_template(template, values)}</p>')
        return self

    def code(self, text: str) -> Section:
        """Preformatted text (commands, configuration)."""
        self.blocks.append(f"<pre>{html.escape(text)}</pre>")
        return self


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}caption{caption-side:bottom;font-size:.85rem;color:#555}
figure{margin:1rem 0}img{max-width:100%}figcaption{font-size:.88rem;color:#444}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:.4rem .8rem}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.85rem}
.meta{color:#666;font-size:.85rem}nav ul{columns:2}
table.text td,table.text th{text-align:left;vertical-align:top}
"""


class Report:
    """Builder of a self-contained HTML page (no external files, scripts or fonts)."""

    def __init__(self, title: str, *, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []

    def section(self, title: str) -> Section:
        """Append and return a new section."""
        anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        taken = {s.anchor for s in self.sections}
        base, k = anchor, 2
        while anchor in taken:
            anchor, k = f"{base}-{k}", k + 1
        sec = Section(title=title, anchor=anchor)
        self.sections.append(sec)
        return sec

    def render(self, *, generated: datetime | None = None) -> str:
        """The HTML document as a string."""
        when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
        nav = "".join(
            f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in self.sections
        )
        body = "".join(
            f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.blocks)}</section>'
            for s in self.sections
        )
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{sub}"
            f'<p class="meta">Generated {when}.</p>'
            f"<nav><ul>{nav}</ul></nav>{body}</body></html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Render and write atomically to ``path``."""
        return atomic_write_text(path, self.render())


_NUM_RE = re.compile(
    r'<span class="num"(?: data-key="(?P<key>[^"]*)")? data-fmt="(?P<fmt>[^"]*)"'
    r'(?: data-value="(?P<value>[^"]*)")?>(?P<text>[^<]*)</span>'
)


def extract_numbers(document: str) -> list[dict[str, str | None]]:
    """Every :class:`Num` of a rendered report: ``{"key", "fmt", "value", "text"}`` (unescaped)."""
    out = []
    for m in _NUM_RE.finditer(document):
        out.append(
            {
                "key": html.unescape(m["key"]) if m["key"] is not None else None,
                "fmt": html.unescape(m["fmt"]),
                "value": html.unescape(m["value"]) if m["value"] is not None else None,
                "text": html.unescape(m["text"]),
            }
        )
    return out
