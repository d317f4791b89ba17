"""Charts as inline SVG, drawn by the server (no library, no script, no CDN).

Every chart is an ``<svg role="img" aria-label="...">`` with a ``<title>``, axis
labels, and a ``<title>`` on each bar or point (the browser shows it as a
tooltip). Pages put a data table under each chart for readers who cannot use
the picture. All text is XML-escaped here, so the result is well-formed XML and
safe to insert with ``|safe``; colours are presentation attributes (the
console's CSP forbids inline styles). A second series is dashed, so colour is
never the only difference.
"""

import math
from typing import Callable, List, Optional, Sequence, Tuple

from markupsafe import Markup, escape

PALETTE = ("#2f6f5e", "#b5542b", "#3d5a99", "#7a6a00")
DASHES = ("", "6 4", "2 3", "8 3 2 3")
INK = "#1d2521"
MUTED = "#5c6b64"
GRID = "#d8e0dc"
FONT = 'font-family="system-ui, sans-serif"'

Number = float
Formatter = Callable[[Number], str]


def _fmt(value: Number) -> str:
    return f"{value:g}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


def percent(value: Number) -> str:
    return f"{value * 100:.1f}%"


def nice_scale(top: Number, ticks: int = 4, integer: bool = True) -> Tuple[Number, Number]:
    """(axis maximum, step) for values up to ``top``: steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return (ticks, 1) if integer else (1.0, 1.0 / ticks)
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(step, 1)
    return math.ceil(top / step - 1e-9) * step, step


def _open(width: int, height: int, label: str) -> List[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'class="chart" role="img" aria-label="{escape(label)}" {FONT} font-size="12">',
        f"<title>{escape(label)}</title>",
    ]


def _text(x: float, y: float, text: str, anchor: str = "middle", fill: str = INK, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{escape(text)}</text>'


def bar_chart(
    items: Sequence[Tuple[str, Number]],
    label: str,
    x_label: str = "",
    y_label: str = "",
    value_format: Formatter = _fmt,
    width: int = 720,
    height: int = 260,
    every: int = 1,
    integer: bool = True,
) -> Markup:
    """Vertical bars, one per ``(category, value)``; every ``every``-th category is labelled."""
    left, right, top, bottom = 72, 12, 16, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    axis_max, step = nice_scale(max([v for _, v in items] or [0]), integer=integer)
    parts = _open(width, height, label)
    parts += _y_axis(left, top, plot_w, plot_h, axis_max, step, value_format, y_label)
    n = max(len(items), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1)
    for i, (name, value) in enumerate(items):
        h = plot_h * (value / axis_max) if axis_max else 0
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(name)}: {escape(value_format(value))}</title></rect>"
        )
    parts += _x_axis(left, top, plot_w, plot_h, height, [name for name, _ in items], every, x_label)
    return _closed(parts)


def hbar_chart(
    items: Sequence[Tuple[str, Number]],
    label: str,
    x_label: str = "",
    value_format: Formatter = _fmt,
    width: int = 720,
    bar_height: int = 22,
    label_width: int = 200,
) -> Markup:
    """Horizontal bars, one per ``(category, value)``, categories on the left."""
    top, bottom, right = 8, 40, 60
    rows = max(len(items), 1)
    height = top + rows * (bar_height + 8) + bottom
    plot_w = width - label_width - right
    axis_max, step = nice_scale(max([v for _, v in items] or [0]))
    parts = _open(width, height, label)
    plot_bottom = top + rows * (bar_height + 8)
    tick = 0.0
    while tick <= axis_max + 1e-9:
        x = label_width + plot_w * tick / axis_max
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{plot_bottom}" stroke="{GRID}"/>')
        parts.append(_text(x, plot_bottom + 14, value_format(tick), fill=MUTED))
        tick += step
    for i, (name, value) in enumerate(items):
        y = top + i * (bar_height + 8) + 4
        w = plot_w * (value / axis_max) if axis_max else 0
        parts.append(_text(label_width - 8, y + bar_height * 0.7, _shorten(name, 30), anchor="end"))
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{PALETTE[0]}">'
            f"<title>{escape(name)}: {escape(value_format(value))}</title></rect>"
        )
        parts.append(_text(label_width + w + 6, y + bar_height * 0.7, value_format(value), anchor="start"))
    if not items:
        parts.append(_text(label_width + plot_w / 2, top + bar_height, "No data", fill=MUTED))
    parts.append(f'<line x1="{label_width}" y1="{top}" x2="{label_width}" y2="{plot_bottom}" stroke="{INK}"/>')
    if x_label:
        parts.append(_text(label_width + plot_w / 2, height - 6, x_label))
    return _closed(parts)


def line_chart(
    categories: Sequence[str],
    series: Sequence[Tuple[str, Sequence[Optional[Number]]]],
    label: str,
    x_label: str = "",
    y_label: str = "",
    value_format: Formatter = _fmt,
    y_max: Optional[Number] = None,
    width: int = 720,
    height: int = 280,
    every: int = 1,
) -> Markup:
    """One line per ``(name, values)`` over ``categories``; a None value breaks the line."""
    left, right, top, bottom = 72, 12, 32, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    if y_max is not None:
        axis_max, step = y_max, y_max / 4
    else:
        axis_max, step = nice_scale(max(values or [0]), integer=False)
    parts = _open(width, height, label)
    parts += _y_axis(left, top, plot_w, plot_h, axis_max, step, value_format, y_label)
    slot = plot_w / max(len(categories), 1)

    def xy(i: int, v: Number) -> Tuple[float, float]:
        return left + i * slot + slot / 2, top + plot_h - plot_h * (v / axis_max if axis_max else 0)

    for s, (name, vals) in enumerate(series):
        colour, dash = PALETTE[s % len(PALETTE)], DASHES[s % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        segment: List[str] = []
        segments: List[List[str]] = []
        for i, v in enumerate(vals):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x, y = xy(i, v)
            segment.append(f"{x:.1f},{y:.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for i, v in enumerate(vals):
            if v is None:
                continue
            x, y = xy(i, v)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(name)}, {escape(categories[i])}: {escape(value_format(v))}</title></circle>"
            )
        # legend, top left
        lx = left + s * 200
        parts.append(f'<line x1="{lx}" y1="12" x2="{lx + 24}" y2="12" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        parts.append(_text(lx + 30, 16, name, anchor="start"))
    parts += _x_axis(left, top, plot_w, plot_h, height, categories, every, x_label)
    return _closed(parts)


def _x_axis(
    left: float, top: float, plot_w: float, plot_h: float, height: float, names: Sequence[str], every: int, x_label: str
) -> List[str]:
    """Under a plot of one slot per name: every ``every``-th name (and the last), the axis line
    and its label."""
    parts = []
    slot = plot_w / max(len(names), 1)
    for i, name in enumerate(names):
        if i % max(every, 1) == 0 or i == len(names) - 1:
            parts.append(_text(left + i * slot + slot / 2, top + plot_h + 16, name, fill=MUTED))
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{INK}"/>')
    if x_label:
        parts.append(_text(left + plot_w / 2, height - 8, x_label))
    return parts


def _closed(parts: List[str]) -> Markup:
    return Markup("".join(parts + ["</svg>"]))


def _y_axis(
    left: float, top: float, plot_w: float, plot_h: float, axis_max: Number, step: Number, fmt: Formatter, y_label: str
) -> List[str]:
    parts = []
    count = int(round(axis_max / step)) if step else 0
    for k in range(count + 1):
        value = k * step
        y = top + plot_h - plot_h * (value / axis_max if axis_max else 0)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, fmt(value), anchor="end", fill=MUTED))
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{INK}"/>')
    if y_label:
        cx, cy = 14, top + plot_h / 2
        parts.append(_text(cx, cy, y_label, extra=f' transform="rotate(-90 {cx} {cy:.1f})"'))
    return parts


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
