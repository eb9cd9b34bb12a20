from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest

from attnpotts.errors import ValidationError
from attnpotts.reports import Num, Report, extract_numbers


def _png() -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_report_is_self_contained_and_numbers_are_tagged(tmp_path: Path) -> None:
    png = _png()
    rep = Report("Title <&>", subtitle="sub")
    sec = rep.section("Depth study")
    sec.text(
        "The factored layer reached {loss} nats, {pct} above the optimum; <b> is escaped.",
        loss=Num(0.123456, key="stages.depth.factored", fmt=".4f"),
        pct=Num(0.0123, key="stages.depth.excess", fmt=".2%"),
    )
    sec.table(["model", "loss"], [["factored", Num(0.5, key="a.b", fmt=".3f")], ["ok", True]])
    sec.figure(png, name="depth", caption="Loss at {n} layers", n=Num(3, key="n", fmt="d"))
    rep.section("Depth study").note("second section with the same title")
    path = rep.write(tmp_path / "r.html")
    doc = path.read_text()
    assert "<script" not in doc and "http" not in doc.replace("http-equiv", "")
    assert "&lt;b&gt; is escaped" in doc and "Title &lt;&amp;&gt;" in doc
    assert 'id="depth-study"' in doc and 'id="depth-study-2"' in doc
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', doc)
    assert len(imgs) == 1 and base64.b64decode(imgs[0]) == png
    nums = extract_numbers(doc)
    assert [(n["key"], n["text"]) for n in nums] == [
        ("stages.depth.factored", "0.1235"),
        ("stages.depth.excess", "1.23%"),
        ("a.b", "0.500"),
        ("n", "3"),
    ]
    assert float(nums[0]["value"] or "nan") == 0.123456


def test_missing_values_render_as_na() -> None:
    assert Num(None).text() == "n/a" and Num(float("nan")).text() == "n/a"
    assert Num(2.0, fmt=".1f", unit="s").text() == "2.0 s"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.text("{x}", x=1.5), "bare number"),
        (lambda s: s.text("{x}"), "has no value"),
        (lambda s: s.text("{x:.2f}", x=Num(1.0)), "format spec"),
        (lambda s: s.table(["a", "b"], [["only one"]]), "has 1 cells"),
        (lambda s: s.figure(b"GIF89a"), "PNG"),
    ],
)
def test_bad_report_content(call: object, match: str) -> None:
    sec = Report("t").section("s")
    with pytest.raises(ValidationError, match=match):
        call(sec)  # type: ignore[operator]
