"""The report: one self-contained HTML file per run, figures for papers, tidy exports.

``write_report(run_dir)`` writes ``RUN_DIR/report.html``: overview, heatmap, survival
curves (with Milgram's human curve on ``milgram1963``), break-off histograms, factor
effects beside the published ones, the four findings, prod efficacy, errors apart
from refusals, provenance, and a transcript browser. It loads nothing from the
network; model output is escaped everywhere and can run no script.
"""

from __future__ import annotations

from pathlib import Path

from obedience.report._export import FORMATS, ExportError, export_tables


def write_report(
    run_dir: str | Path, out: str | Path | None = None, figures_dir: str | Path | None = None
) -> Path:
    """Write the HTML report (default ``RUN_DIR/report.html``); return its path.

    With ``figures_dir``, also write every figure as SVG and PNG there.
    """
    from obedience.report._build import build
    from obedience.report._render import write_html

    run = Path(run_dir)
    rep = build(run)
    target = Path(out) if out is not None else run / "report.html"
    if figures_dir is not None:
        for fig in rep.figures.values():
            fig.write(Path(figures_dir))
    return write_html(rep, target)


__all__ = ["FORMATS", "ExportError", "export_tables", "write_report"]
