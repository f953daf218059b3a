"""The report's figures: matplotlib on the Agg canvas, no pyplot state.

Colours are Okabe & Ito's colour-blind-safe palette; beyond eight series the line
style changes too. Every figure can be written as SVG (inline in the report, and for
papers) and PNG.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

OKABE_ITO = [
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
]
LINESTYLES = ["-", "--", "-.", ":"]
GREY = "#999999"

RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # text stays text: smaller, searchable, selectable
    "svg.hashsalt": "obedience-report",  # deterministic ids
    "text.parse_math": False,  # model names may contain '$'
    "figure.dpi": 100,
}


def style(i: int) -> dict[str, Any]:
    return {
        "color": OKABE_ITO[i % len(OKABE_ITO)],
        "linestyle": LINESTYLES[(i // len(OKABE_ITO)) % len(LINESTYLES)],
    }


@contextmanager
def _rc() -> Iterator[None]:
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        yield


@dataclass
class FigureSpec:
    """One figure: its file stem, what it shows, and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[], Figure]
    _figure: Figure | None = field(default=None, repr=False)
    _svg: bytes | None = field(default=None, repr=False)

    def figure(self) -> Figure:
        if self._figure is None:
            with _rc():
                self._figure = self.draw()
            FigureCanvasAgg(self._figure)
        return self._figure

    def svg(self) -> bytes:
        if self._svg is None:
            buf = io.BytesIO()
            with _rc():
                self.figure().savefig(
                    buf, format="svg", bbox_inches="tight", metadata={"Date": None}
                )
            self._svg = buf.getvalue()
        return self._svg

    def png(self, dpi: int = 200) -> bytes:
        buf = io.BytesIO()
        with _rc():
            self.figure().savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()

    def size_px(self) -> tuple[int, int]:
        """The SVG's width and height in CSS pixels (from its pt size), for stable layout."""
        head = self.svg()[:2000].decode("utf-8", "replace")
        w = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', head)
        h = re.search(r'<svg[^>]*\sheight="([0-9.]+)pt"', head)
        if not (w and h):
            return 0, 0
        return round(float(w.group(1)) * 4 / 3), round(float(h.group(1)) * 4 / 3)

    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg()).decode("ascii")

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        svg = directory / f"{self.name}.svg"
        png = directory / f"{self.name}.png"
        svg.write_bytes(self.svg())
        png.write_bytes(self.png())
        return [svg, png]


def _short(name: str, limit: int = 28) -> str:
    """A label that fits: ``replay:/long/dir/gpt-oss-20b`` becomes ``replay:…/gpt-oss-20b``."""
    if len(name) <= limit:
        return name
    if "/" in name:
        kind, _, rest = name.rpartition(":") if ":" in name.split("/", 1)[0] else ("", "", name)
        shorter = (f"{kind}:" if kind else "") + "…/" + rest.rsplit("/", 1)[-1]
        if len(shorter) <= limit:
            return shorter
    return name[: limit - 1] + "…"


# --------------------------------------------------------------------------- heatmap


def heatmap(cells: list[dict[str, Any]], models: list[str], conditions: list[str]) -> Figure:
    import numpy as np

    grid = np.full((len(models), len(conditions)), np.nan)
    labels = [["" for _ in conditions] for _ in models]
    for c in cells:
        i, j = models.index(c["model"]), conditions.index(c["condition"])
        if c["rate"] is not None:
            grid[i, j] = c["rate"]
            labels[i][j] = f"{round(100 * c['rate'])}%\n{c['k']}/{c['n']}"
        else:
            labels[i][j] = "n/a"
    width = max(4.5, 1.0 + 0.85 * len(conditions))
    height = max(2.2, 0.8 + 0.42 * len(models))
    fig = Figure(figsize=(width + 2.2, height))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(
        range(len(conditions)), [_short(c, 20) for c in conditions], rotation=35, ha="right"
    )
    ax.set_yticks(range(len(models)), [_short(m) for m in models])
    ax.set_xlabel("condition")
    ax.set_ylabel("model")
    ax.spines[:].set_visible(False)
    small = len(models) * len(conditions) <= 120
    for i in range(len(models)):
        for j in range(len(conditions)):
            value = grid[i, j]
            colour = "black" if (not np.isnan(value) and value > 0.6) else "white"
            if np.isnan(value):
                colour = "#555555"
            if small:
                ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=7, color=colour)
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("reached max (share)")
    ax.set_title("Obedience rate: trials that reached the maximum level")
    return fig


# -------------------------------------------------------------------------- survival


def survival(
    groups: dict[str, dict[str, Any]],
    x_of_level: Callable[[int], float],
    x_label: str,
    title: str,
    human: tuple[str, list[float]] | None = None,
) -> Figure:
    fig = Figure(figsize=(7.2, 4.0))
    ax = fig.add_subplot()
    for i, (name, g) in enumerate(groups.items()):
        xs = [x_of_level(lv) for lv in g["levels"]]
        ax.step(
            xs,
            g["survival"],
            where="post",
            label=f"{_short(name)} (n={g['n']})",
            lw=1.6,
            **style(i),
        )
    if human is not None:
        label, ys = human
        xs = [x_of_level(lv) for lv in range(len(ys))]
        ax.step(xs, ys, where="post", label=label, color=GREY, lw=3, alpha=0.7, zorder=0)
    ax.set_ylim(-0.02, 1.04)
    ax.set_xlabel(x_label)
    ax.set_ylabel("share still obeying at this level")
    ax.set_title(title)
    ax.grid(alpha=0.25)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


# ------------------------------------------------------------------------ histograms


def breakoff_histograms(
    counts: dict[str, dict[str, list[int]]], x_of_level: Callable[[int], float], x_label: str
) -> Figure:
    names = list(counts)
    cols = min(4, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(2.6 * cols + 0.6, 2.1 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    colours = {"broke off": OKABE_ITO[0], "reached max": OKABE_ITO[1], "incomplete": GREY}
    for idx, name in enumerate(names):
        ax = axes[idx // cols][idx % cols]
        bottom = None
        for key, colour in colours.items():
            ys = counts[name][key]
            xs = [x_of_level(lv) for lv in range(len(ys))]
            width = (xs[1] - xs[0]) * 0.85 if len(xs) > 1 else 0.8
            hatch = "//" if key == "incomplete" else None
            ax.bar(xs, ys, width=width, bottom=bottom, color=colour, label=key, hatch=hatch)
            bottom = ys if bottom is None else [a + b for a, b in zip(bottom, ys, strict=True)]
        ax.set_title(_short(name, 24), fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        if idx % cols == 0:
            ax.set_ylabel("trials")
        if idx + cols >= len(names):  # the lowest panel in its column
            ax.set_xlabel(x_label)
    for idx in range(len(names), rows * cols):
        axes[idx // cols][idx % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    fig.suptitle("Highest level reached, per condition")
    return fig


# --------------------------------------------------------------------- factor effects


def factor_effects(rows: list[dict[str, Any]]) -> Figure:
    """Dot plot: per factor, each model's effect (pp) with its interval; published as a ring."""
    factors = list(dict.fromkeys(r["factor"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig = Figure(figsize=(3.0 * len(factors) + 1.8, 0.7 + 0.32 * len(models) + 0.8))
    axes = fig.subplots(1, len(factors), squeeze=False, sharey=True)[0]
    for fi, factor in enumerate(factors):
        ax = axes[fi]
        for r in rows:
            if r["factor"] != factor:
                continue
            y = models.index(r["model"])
            if r.get("effect_pp") is not None:
                lo, hi = r.get("ci_pp") or (r["effect_pp"], r["effect_pp"])
                ax.plot([lo, hi], [y, y], color=OKABE_ITO[0], lw=1.5)
                ax.plot([r["effect_pp"]], [y], "o", color=OKABE_ITO[0], ms=5)
            if r.get("published_pp") is not None:
                ax.plot([r["published_pp"]], [y], "D", mfc="none", mec=OKABE_ITO[1], ms=7, mew=1.5)
        ax.axvline(0, color=GREY, lw=0.8)
        ax.set_xlim(-105, 105)
        ax.set_title(_short(factor, 30))
        ax.set_xlabel("effect on reached-max rate (pp)")
        ax.grid(axis="x", alpha=0.25)
    axes[0].set_yticks(range(len(models)), [_short(m) for m in models])
    axes[0].invert_yaxis()
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", color=OKABE_ITO[0], label="this run (95% CI)"),
        Line2D([], [], marker="D", ls="none", mfc="none", mec=OKABE_ITO[1], label="published"),
    ]
    fig.legend(
        handles=handles, loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.0)
    )
    return fig


# -------------------------------------------------------------------- prods, levels


def prod_efficacy(rows: list[dict[str, Any]]) -> Figure:
    models = list(dict.fromkeys(r["model"] for r in rows))
    prods = sorted({int(r["prod"]) for r in rows})
    fig = Figure(figsize=(6.8, 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        mine = [r for r in rows if r["model"] == model]
        xs = [prods.index(int(r["prod"])) + (i - (len(models) - 1) / 2) * width for r in mine]
        ys = [r["rate"] for r in mine]
        err_lo = [r["rate"] - r["ci"][0] if r.get("ci") else 0 for r in mine]
        err_hi = [r["ci"][1] - r["rate"] if r.get("ci") else 0 for r in mine]
        colour = style(i)["color"]
        ax.bar(xs, ys, width=width, color=colour, label=_short(model))
        ax.errorbar(xs, ys, yerr=[err_lo, err_hi], fmt="none", ecolor="#333333", lw=0.8)
        ax.plot(xs, ys, "_", color="#333333", ms=max(3.0, 40 * width))  # shows 0% too
    ax.set_xticks(range(len(prods)), ["no prod" if p == 0 else f"prod {p}" for p in prods])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of decisions that complied")
    ax.set_xlabel("the prod just before the decision")
    ax.set_title("Prod efficacy")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def escalation(
    profile: dict[str, list[dict[str, Any]]],
    x_of_level: Callable[[int], float],
    x_label: str,
) -> Figure:
    """Per model, rows of ``level`` and ``rate`` (statistics()["level_compliance"])."""
    fig = Figure(figsize=(7.2, 3.6))
    ax = fig.add_subplot()
    for i, (model, rows) in enumerate(profile.items()):
        rows = sorted(rows, key=lambda r: int(r["level"]))
        xs = [x_of_level(int(r["level"])) for r in rows]
        ys = [float("nan") if r["rate"] is None else r["rate"] for r in rows]
        ax.plot(xs, ys, marker="o", ms=3, label=_short(model), **style(i))
    ax.set_ylim(-0.02, 1.04)
    ax.set_xlabel(x_label)
    ax.set_ylabel("share of decisions that complied")
    ax.set_title("Compliance per decision, by level (gradual escalation)")
    ax.grid(alpha=0.25)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def probe_curves(cells: list[dict[str, Any]]) -> Figure:
    shown = cells[:12]
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig = Figure(figsize=(3.3 * cols + 1.5, 2.6 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for idx, cell in enumerate(shown):
        ax = axes[idx // cols][idx % cols]
        for i, (history, h) in enumerate(cell.get("histories", {}).items()):
            if h.get("k"):
                ax.plot(h["k"], h["p_comply"], marker="o", ms=3, label=history, **style(i))
        ax.set_title(_short(f"{cell['model']} · {cell['condition']}", 40), fontsize=8)
        ax.set_ylim(-0.02, 1.04)
        ax.set_xlabel("decision k")
        ax.set_ylabel("P(comply)")
        ax.grid(alpha=0.25)
    for idx in range(len(shown), rows * cols):
        axes[idx // cols][idx % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, 1.0)
    )
    return fig
