"""The digest chart: one PNG, readable on a phone, with Chinese labels that render.

`render_chart(digest, lang, zone)` returns PNG bytes: the median ask of the busiest models over
the last weeks (one panel per deal, since ¥/GPU-hour and ¥/GPU do not share an axis) above
the sellers and buyers of each model this week. `build_figure` makes the same figure without
saving it, so tests can read its titles, labels and numbers.

Headless, and safe in a worker thread: a bare `Figure` on the Agg canvas, never pyplot (no
global figure registry, no GUI backend). Settings go through `rc_context`, which changes
matplotlib's global rcParams for its duration, so drawing holds one lock: the scheduler draws
in a worker thread while `/digest` may draw on the event loop's.

Chinese text needs a CJK font, and no PyPI package ships one. `cjk_font()` finds one already
known to matplotlib, or else scans the system's font files by name (a font installed after
matplotlib built its cache is not in `fontManager` yet) and registers it. Without one the
chart still renders, in DejaVu Sans, with a warning in the log: CJK glyphs then show as
boxes. `make install` installs fonts-wqy-microhei on Debian.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from datetime import tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from gpudesk.handlers import format as fmt
from gpudesk.handlers.texts import say
from gpudesk.market.digest import Digest, History
from gpudesk.market.offer import Deal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

# Families with the Simplified Chinese glyphs, best looking first, and the file names they ship
# under (Debian: fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-*).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",  # what fonts-noto-cjk's .ttc registers as (its first face; has hanzi)
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy-", "droidsansfallback")
PROBE = "周报卖买价"  # characters every label might use: a font must have all of them
LATIN = "DejaVu Sans"  # matplotlib's own; the CJK font comes first, this catches the rest

WIDTH_INCHES = 7.2  # at DPI 150: 1080 px, the width phones show without scaling
DPI = 150
PRICE_PANEL_INCHES = 3.2
BAR_ROW_INCHES = 0.45
LINES_PER_PANEL = 4  # more lines than this and a phone screen shows spaghetti
BAR_MODELS = 6
_DRAWING = threading.RLock()  # see the module docstring; re-entrant: render_chart builds too
SELLERS_COLOUR = "#d1495b"
BUYERS_COLOUR = "#00798c"


@functools.cache
def cjk_font() -> str | None:
    """The family name of a CJK font matplotlib can use, registering it if need be."""
    from matplotlib import font_manager

    known = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known and _has_glyphs(font_manager.findfont(family)):
            return family
    for path in sorted(font_manager.findSystemFonts()):
        if not any(hint in Path(path).name.lower() for hint in CJK_FILE_HINTS):
            continue
        if not _has_glyphs(path):
            continue
        font_manager.fontManager.addfont(path)
        return str(font_manager.FontProperties(fname=path).get_name())
    log.warning(
        "no CJK font found: Chinese text in digest charts will show as boxes. Install one, "
        "e.g. `apt-get install fonts-wqy-microhei` (`make install` does it when run as root)"
    )
    return None


def _has_glyphs(path: str) -> bool:
    from matplotlib import ft2font

    try:
        face = ft2font.FT2Font(path)
    except (OSError, RuntimeError):
        return False
    return all(face.get_char_index(ord(char)) for char in PROBE)


def render_chart(digest: Digest, lang: str, zone: tzinfo) -> bytes:
    """The digest's chart as PNG bytes."""
    import matplotlib

    family = cjk_font()
    with _DRAWING, matplotlib.rc_context(_style(family)):
        figure = build_figure(digest, lang, zone)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def build_figure(digest: Digest, lang: str, zone: tzinfo) -> Figure:
    """The chart as a matplotlib `Figure`, not yet drawn (see `render_chart`)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _DRAWING, matplotlib.rc_context(_style(cjk_font())):
        panels = _price_panels(digest)
        bars = digest.models[:BAR_MODELS]
        heights = [PRICE_PANEL_INCHES] * len(panels) + [1.2 + BAR_ROW_INCHES * len(bars)]
        figure = Figure(figsize=(WIDTH_INCHES, sum(heights) + 0.9), layout="constrained")
        FigureCanvasAgg(figure)
        # No bold: CJK fonts ship one weight, and a faked bold is a warning per draw.
        figure.suptitle(say(lang, "chart.title", week=digest.week), fontsize=18)
        axes = figure.subplots(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
        colours = _colours(digest)
        for ax, (deal, series) in zip(axes, panels, strict=False):
            _draw_prices(ax, digest, deal, series, colours, lang, zone)
        _draw_parties(axes[-1], digest, lang)
    return figure


def _style(family: str | None) -> dict[str, object]:
    return {
        "font.family": [family, LATIN] if family else [LATIN],
        "font.size": 12,
        "axes.unicode_minus": False,  # CJK fonts often lack U+2212; "-" is in every font
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _colours(digest: Digest) -> dict[str, str]:
    """One colour per GPU, the same in every panel (the busiest first)."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    gpus = dict.fromkeys(p.gpu for p in digest.models)
    return {gpu: _hex(palette[i % len(palette)]) for i, gpu in enumerate(gpus)}


def _hex(rgb: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb[:3])


def _price_panels(digest: Digest) -> list[tuple[Deal, list[History]]]:
    """Per deal (rent first), the busiest models that had a median ask in some week."""
    panels = []
    for deal in (Deal.RENT, Deal.SALE):
        series = [
            h
            for h in digest.history
            if h.deal is deal and any(p.median_ask is not None for p in h.points)
        ]
        if series:
            panels.append((deal, series[:LINES_PER_PANEL]))
    return panels


def _draw_prices(
    ax: Axes,
    digest: Digest,
    deal: Deal,
    series: list[History],
    colours: dict[str, str],
    lang: str,
    zone: tzinfo,
) -> None:
    from matplotlib.ticker import FuncFormatter

    unit = fmt.SYMBOLS[digest.currency] + say(lang, f"unit.{series[0].unit.value}")
    weeks = len(series[0].points)
    deal_word = say(lang, f"deal.{deal.value}")
    ax.set_title(
        say(lang, "chart.asks", deal=deal_word, unit=unit, weeks=weeks), loc="left", fontsize=14
    )
    labels = [point.end.astimezone(zone).strftime("%m-%d") for point in series[0].points]
    for history in series:
        xs = [i for i, p in enumerate(history.points) if p.median_ask is not None]
        ys = [float(history.points[i].median_ask or 0) for i in xs]
        colour = colours[history.gpu]
        ax.plot(xs, ys, marker="o", linewidth=2.2, label=history.gpu, color=colour)
        if xs[-1] != len(history.points) - 1:
            continue  # no ask this week: a label at an old point would read as today's price
        last = history.points[xs[-1]].median_ask
        ax.annotate(
            fmt.money(last, digest.currency, lang),
            (xs[-1], ys[-1]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=11,
            color=colour,
        )
    ax.set_xticks(range(len(labels)), labels, fontsize=10)
    ax.set_xlim(-0.3, len(labels) - 0.3)  # room on the right for the last value
    ax.yaxis.set_major_formatter(
        FuncFormatter(lambda y, _: fmt.money(Decimal(str(y)), digest.currency, lang))
    )
    ax.grid(axis="y", alpha=0.3)
    # Below the dates, not over the lines: the lines fill the panel.
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        fontsize=12,
        frameon=False,
        ncols=min(len(series), LINES_PER_PANEL),
    )


def _draw_parties(ax: Axes, digest: Digest, lang: str) -> None:
    models = digest.models[:BAR_MODELS]
    ax.set_title(say(lang, "chart.parties"), loc="left", fontsize=14)
    names = [f"{p.gpu} {say(lang, f'deal.{p.deal.value}')}" for p in models]
    rows = range(len(models))
    height = 0.38
    for offset, values, colour, key in (
        (-height / 2, [p.sellers for p in models], SELLERS_COLOUR, "chart.sellers"),
        (height / 2, [p.buyers for p in models], BUYERS_COLOUR, "chart.buyers"),
    ):
        bars = ax.barh(
            [r + offset for r in rows], values, height=height, color=colour, label=say(lang, key)
        )
        ax.bar_label(bars, padding=3, fontsize=11)
    ax.set_yticks(list(rows), names, fontsize=12)
    ax.invert_yaxis()  # busiest on top, as in the text
    ax.xaxis.set_visible(False)
    ax.spines["bottom"].set_visible(False)
    ax.margins(x=0.12)  # room for the count after the longest bar
    ax.legend(loc="lower right", fontsize=11, frameon=False)
