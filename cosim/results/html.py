"""Building blocks of the self-contained HTML report: escaping, sections,
tables and inline PNG images (no network, no script)."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; background: #fff; }
h1 { border-bottom: 3px solid #2a6db0; padding-bottom: .2em; }
h2 { color: #2a6db0; margin-top: 1.6em; }
section { margin-bottom: 1.5em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #e8f0f8; }
td.num { text-align: right; font-family: monospace; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #ddd; }
p.none { color: #777; font-style: italic; }
p.note { color: #444; font-size: 0.9em; }
"""


def esc(value: object) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value))


def section(sid: str, title: str, body: str) -> str:
    """One `<section id=sid>` with its heading."""
    return f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{body}\n</section>\n'


def none_line(what: str) -> str:
    """The one line of a section without data."""
    return f'<p class="none">{esc(what)}: none in this run.</p>'


def table(header: list[str] | None, rows: list[list[object]], numeric: set[int] | None = None) -> str:
    """An HTML table (no heading row when `header` is None); columns in
    `numeric` are right-aligned monospace."""
    numeric = numeric or set()
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>\n" if header else ""
    body = "".join("<tr>" + "".join(f'<td class="num">{esc(c)}</td>' if k in numeric else f"<td>{esc(c)}</td>"
                                    for k, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>\n{head}{body}</table>"


def png_uri(data: bytes) -> str:
    """PNG bytes as a data URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(fig: Figure) -> bytes:
    """A matplotlib Figure rendered to PNG bytes (110 dpi)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def img(data: bytes, alt: str) -> str:
    """An inline `<img>` of PNG bytes."""
    return f'<img src="{png_uri(data)}" alt="{esc(alt)}">'


def fmt(value: float | None, digits: int = 3) -> str:
    """A number in `digits` significant digits, '-' for None."""
    return "-" if value is None else f"{float(value):.{digits}g}"


def _cell(value: object) -> object:
    """A config value as a table cell: JSON for lists and objects."""
    return json.dumps(value) if isinstance(value, (dict, list)) else value


