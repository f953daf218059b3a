"""Render a built report into one self-contained HTML file."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from obedience.report._browser import script_json
from obedience.report._build import Report


def _asset(name: str) -> str:
    return resources.files("obedience.report").joinpath("templates", name).read_text("utf-8")


def _pct(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * float(value):.{digits}f}%"


def _ci(value: Any) -> str:
    if not value or value[0] is None:
        return ""
    return f"[{100 * value[0]:.0f}–{100 * value[1]:.0f}]"


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return (
            f"{value:.{digits}f}" if abs(value) >= 10 ** (-digits) or value == 0 else f"{value:.2e}"
        )
    return str(value)


def _pp(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):+.0f} pp"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("obedience.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,  # sparse or older manifests still render
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, ci=_ci, num=_num, pp=_pp, pretty=_pretty)
    return env


def render(rep: Report) -> str:
    script = _asset("report.js")
    css = _asset("report.css")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    # Only this exact script may run: no other inline script or event handler, no
    # network fetch of any kind. Figures are data: images (SVG in <img> runs no script).
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    figures = {
        name: {
            "title": f.title,
            "caption": f.caption,
            "src": f.data_uri(),
            "name": name,
            "size": f.size_px(),
        }
        for name, f in rep.figures.items()
    }
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            r=rep,
            s=rep.sections,
            m=rep.manifest,
            figures=figures,
            css=Markup(css),
            script=Markup(script),
            csp=csp,
            data=Markup(script_json(rep.browser)),
            run_name=rep.run_dir.resolve().name,
            axis=rep.axis,
        )
    )
    return page


def write_html(rep: Report, out: Path) -> Path:
    html = render(rep)
    # Text is made safe where it enters a run; a lone surrogate from an older store is
    # shown as an escape here rather than lost or fatal.
    write_file_atomic(out, html.encode("utf-8", "backslashreplace"))
    return out


def write_file_atomic(out: Path, data: bytes) -> None:
    """Write ``out`` whole or not at all; a failed write (a full disk) leaves no temp file.

    Raises ``OSError``; a full disk is reported as such (ENOSPC), not as a later I/O error.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
