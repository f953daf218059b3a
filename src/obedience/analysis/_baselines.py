"""Published baselines, shipped as data (``data/baselines.toml``), and comparisons.

The data: Milgram's Experiment 1 break-off distribution and the 450 V rates of his
variants, Burger's (2009) "past 150 V" rate, the Aher et al. (2023) simulated
subjects, Aksu's summary numbers, and the paper's per-model, per-condition table
(Pihlakas & Dagohoy 2026), each with its source string. A name map relates served
model names (Hugging Face ids, Ollama tags, API ids, GGUF file names) to the
paper's model names.

``compare_baselines(trials, decisions, protocol)`` puts a run beside them:

- ``model_map``: run model -> paper model name (or None).
- ``paper`` (pihlakas2026 runs): per matched model and condition, the run's k/n
  reaching the maximum beside the published k/30, the difference with a Newcombe
  interval, and Fisher's exact test (odds ratio: run vs paper); ``p_holm`` over the
  list.
- ``rates`` (milgram1963 runs): per model and condition, the 450 V rate beside each
  published rate for that condition (Milgram's variants, Aher et al.), and the
  share past 150 V beside Burger (2009) and Milgram's Exp. 5; Fisher's exact test
  when the published figure has k and n, otherwise an exact binomial test against
  the published rate taken as known; ``p_holm`` over the list.
- ``survival`` (milgram1963 runs): a log-rank test of the run's break-off levels in
  the matching condition against the published individual records (Milgram Exp. 1,
  n=40; Aher et al., n=100); ``p_holm`` over the list.
- ``context``: Aksu's summary numbers beside the run's (no test: no counts given).
- ``reference_curves``: the published survival curves over levels 0..30.
- ``sources``: id -> source string.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from obedience.analysis._estimators import (
    binomial_vs_rate,
    fisher_test,
    holm,
    kaplan_meier,
    logrank_test,
    newcombe_difference,
    proportion,
)
from obedience.analysis._sections import completed, survival_times

MILGRAM_PROTOCOL = "milgram1963"
MILGRAM_LEVELS = 30


class BaselineDataError(ValueError):
    """The baselines file is malformed. The message is one line."""


@dataclass(frozen=True)
class PaperModel:
    name: str
    reached: dict[str, int]
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class PaperTable:
    id: str
    label: str
    source: str
    protocol: str
    trials_per_cell: int
    max_level: int
    conditions: tuple[str, ...]
    models: tuple[PaperModel, ...]

    def model(self, name: str) -> PaperModel | None:
        return next((m for m in self.models if m.name == name), None)


@dataclass(frozen=True)
class BreakoffDistribution:
    """Individual records: the last level each subject gave (volts -> subjects)."""

    id: str
    label: str
    source: str
    condition: str
    n: int
    max_volts: int
    volts_per_level: int
    breakoffs: dict[int, int]

    @property
    def max_level(self) -> int:
        return self.max_volts // self.volts_per_level

    @property
    def reached_max(self) -> int:
        return self.breakoffs.get(self.max_volts, 0)

    def records(self) -> tuple[list[float], list[bool]]:
        """(time, event) per subject, on the same scale as ``survival_times``.

        A subject whose last shock was level h broke off at h + 1 (an event); one who
        gave the maximum is censored at the maximum.
        """
        times: list[float] = []
        events: list[bool] = []
        for volts, count in sorted(self.breakoffs.items()):
            level = volts // self.volts_per_level
            event = volts != self.max_volts
            times += [float(level + 1 if event else level)] * count
            events += [event] * count
        return times, events


@dataclass(frozen=True)
class RateBaseline:
    id: str
    label: str
    condition: str
    rate: float
    source: str
    k: int | None = None
    n: int | None = None
    unconfirmed: bool = False


@dataclass(frozen=True)
class Baselines:
    paper: PaperTable
    milgram_exp1: BreakoffDistribution
    milgram_variants: tuple[RateBaseline, ...]
    past_150v: tuple[RateBaseline, ...]
    aher: BreakoffDistribution
    aksu: dict[str, Any]

    def sources(self) -> dict[str, str]:
        out = {self.paper.id: self.paper.source}
        out[self.milgram_exp1.id] = self.milgram_exp1.source
        out[self.aher.id] = self.aher.source
        out[str(self.aksu["id"])] = str(self.aksu["source"])
        for r in (*self.milgram_variants, *self.past_150v):
            out[r.id] = r.source
        return out


# ------------------------------------------------------------------------- loading


def _distribution(d: dict[str, Any]) -> BreakoffDistribution:
    dist = BreakoffDistribution(
        id=str(d["id"]),
        label=str(d["label"]),
        source=str(d["source"]),
        condition=str(d["condition"]),
        n=int(d["n"]),
        max_volts=int(d["max_volts"]),
        volts_per_level=int(d["volts_per_level"]),
        breakoffs={int(v): int(c) for v, c in d["breakoffs"].items()},
    )
    if sum(dist.breakoffs.values()) != dist.n:
        total = sum(dist.breakoffs.values())
        raise BaselineDataError(f"{dist.id}: break-off counts sum to {total}, not n={dist.n}")
    return dist


def _rate(d: dict[str, Any]) -> RateBaseline:
    r = RateBaseline(
        id=str(d["id"]),
        label=str(d["label"]),
        condition=str(d.get("condition", "")),
        rate=float(d["rate"]),
        source=str(d["source"]),
        k=int(d["k"]) if "k" in d else None,
        n=int(d["n"]) if "n" in d else None,
        unconfirmed=bool(d.get("unconfirmed", False)),
    )
    if r.k is not None and r.n is not None and abs(r.k / r.n - r.rate) > 1e-9:
        raise BaselineDataError(f"{r.id}: k/n = {r.k}/{r.n} does not match rate {r.rate}")
    return r


def parse_baselines(data: dict[str, Any]) -> Baselines:
    try:
        p = data["paper"]
        conditions = tuple(str(c) for c in p["conditions"])
        per_cell = int(p["trials_per_cell"])
        models = []
        for m in p["models"]:
            reached = [int(x) for x in m["reached"]]
            if len(reached) != len(conditions) or not all(0 <= x <= per_cell for x in reached):
                raise BaselineDataError(f"paper model {m['name']}: bad 'reached' {reached}")
            models.append(
                PaperModel(
                    name=str(m["name"]),
                    reached=dict(zip(conditions, reached, strict=True)),
                    aliases=tuple(str(a) for a in m.get("aliases", [])),
                )
            )
        paper = PaperTable(
            id=str(p["id"]),
            label=str(p["label"]),
            source=str(p["source"]),
            protocol=str(p["protocol"]),
            trials_per_cell=per_cell,
            max_level=int(p["max_level"]),
            conditions=conditions,
            models=tuple(models),
        )
        return Baselines(
            paper=paper,
            milgram_exp1=_distribution(data["milgram_exp1"]),
            milgram_variants=tuple(_rate(r) for r in data["milgram_variants"]),
            past_150v=tuple(_rate(r) for r in data["past_150v"]),
            aher=_distribution(data["aher2023"]),
            aksu=dict(data["aksu"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BaselineDataError):
            raise
        raise BaselineDataError(f"malformed baselines data: {type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=4)
def load_baselines(path: str | None = None) -> Baselines:
    """The packaged baselines (or those in ``path``, a TOML file of the same shape)."""
    if path is None:
        data_file = resources.files("obedience.analysis").joinpath("data/baselines.toml")
        text = data_file.read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BaselineDataError(f"baselines TOML: {exc}") from None
    return parse_baselines(data)


# ---------------------------------------------------------------------- name map

_BACKEND_PREFIXES = ("openai", "gguf", "hf", "ollama", "vllm", "llama", "together")
_QUANT_SUFFIX = re.compile(
    r"[-_.](?:i?q\d\w*|f16|f32|bf16|fp16|fp8|int4|int8|w4a16|w8a8|awq|gptq|gguf|mlx|\d+bit|ud)$"
)
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def normalise_model_name(name: str) -> str:
    """A served model name reduced to a comparable key.

    Lower case; a backend prefix (``openai:``), directories, the owner (``Qwen/``), a
    ``.gguf`` extension, shard and quantisation suffixes (``-Q4_K_M``, ``-fp8``,
    ``-GGUF``) and an Ollama ``:latest`` tag removed. Sizes and versions stay, so
    ``qwen2.5:72b`` and ``qwen2.5:7b`` stay apart.
    """
    s = name.strip()
    kind, sep, rest = s.partition(":")
    if sep and kind.lower() in _BACKEND_PREFIXES and rest:
        s = rest
    s = s.replace("\\", "/").rstrip("/")
    s = s.rsplit("/", 1)[-1]
    s = s.lower()
    if s.endswith(".gguf"):
        s = s[: -len(".gguf")]
    s = _SHARD_SUFFIX.sub("", s)
    if s.endswith(":latest"):
        s = s[: -len(":latest")]
    # Ollama / OpenRouter tag variants: ":free", ":cloud".
    s = re.sub(r":(free|cloud|nitro|beta)$", "", s)
    previous = None
    while previous != s:
        previous = s
        s = _QUANT_SUFFIX.sub("", s)
    return s


@functools.lru_cache(maxsize=4)
def _alias_index(path: str | None = None) -> dict[str, str]:
    index: dict[str, str] = {}
    for model in load_baselines(path).paper.models:
        for alias in model.aliases:
            key = normalise_model_name(alias)
            other = index.get(key)
            if other is not None and other != model.name:
                raise BaselineDataError(f"alias {alias!r} names both {other} and {model.name}")
            index[key] = model.name
    return index


def paper_model_for(name: str) -> str | None:
    """The paper's name of a served model (``openai:Qwen/Qwen2.5-7B-Instruct`` ->
    ``Qwen2.5-7B``), or None when it is not one of the paper's 11 models."""
    return _alias_index().get(normalise_model_name(name))


def published_by_run_model(models: list[str]) -> dict[str, tuple[str, dict[str, int], int]]:
    """Run model -> (paper name, {condition: k reaching the maximum}, trials per cell)."""
    paper = load_baselines().paper
    out: dict[str, tuple[str, dict[str, int], int]] = {}
    for m in models:
        name = paper_model_for(m)
        pm = paper.model(name) if name else None
        if pm is not None:
            out[m] = (pm.name, dict(pm.reached), paper.trials_per_cell)
    return out


# ------------------------------------------------------------------- comparisons


def _with_holm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row, adj in zip(rows, holm([r.get("p") for r in rows]), strict=True):
        row["p_holm"] = adj
    return rows


def _paper_rows(trials: pd.DataFrame, b: Baselines) -> list[dict[str, Any]]:
    paper = b.paper
    rows: list[dict[str, Any]] = []
    for (model, condition), g in trials.groupby(["model", "condition"], sort=True):
        name = paper_model_for(str(model))
        pm = paper.model(name) if name else None
        if pm is None or condition not in pm.reached:
            continue
        done = completed(g)
        k, n = int(done["reached_max"].sum()), len(done)
        pk, pn = pm.reached[str(condition)], paper.trials_per_cell
        run, pub = proportion(k, n), proportion(pk, pn)
        diff = newcombe_difference(k, n, pk, pn)
        fisher = fisher_test(k, n, pk, pn)
        rows.append(
            {
                "model": model,
                "paper_model": pm.name,
                "condition": condition,
                "n": n,
                "k": k,
                "rate": run["rate"],
                "ci": run["ci"],
                "published_k": pk,
                "published_n": pn,
                "published_rate": pub["rate"],
                "published_ci": pub["ci"],
                "difference": diff[0] if diff else None,
                "difference_ci": [diff[1], diff[2]] if diff else None,
                "odds_ratio": fisher["odds_ratio"],
                "odds_ratio_ci": fisher["odds_ratio_ci"],
                "p": fisher["p"],
                "test": "fisher-exact",
                "reference": paper.id,
            }
        )
    return _with_holm(rows)


def _rate_row(
    model: str, condition: str, metric: str, k: int, n: int, ref: RateBaseline
) -> dict[str, Any]:
    run = proportion(k, n)
    row: dict[str, Any] = {
        "model": model,
        "condition": condition,
        "metric": metric,
        "reference": ref.id,
        "label": ref.label,
        "n": n,
        "k": k,
        "rate": run["rate"],
        "ci": run["ci"],
        "published_rate": ref.rate,
        "published_k": ref.k,
        "published_n": ref.n,
        "unconfirmed": ref.unconfirmed,
        "difference": (run["rate"] - ref.rate) if run["rate"] is not None else None,
        "difference_ci": None,
    }
    if ref.k is not None and ref.n is not None:
        diff = newcombe_difference(k, n, ref.k, ref.n)
        row["difference_ci"] = [diff[1], diff[2]] if diff else None
        fisher = fisher_test(k, n, ref.k, ref.n)
        row.update(odds_ratio=fisher["odds_ratio"], p=fisher["p"], test="fisher-exact")
    else:
        row.update(
            odds_ratio=None,
            p=binomial_vs_rate(k, n, ref.rate),
            test="binomial-vs-published-rate",
        )
    return row


def _milgram_rows(
    trials: pd.DataFrame, b: Baselines
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rates: list[dict[str, Any]] = []
    survival: list[dict[str, Any]] = []
    aher_rate = RateBaseline(
        id=b.aher.id,
        label=b.aher.label,
        condition=b.aher.condition,
        rate=b.aher.reached_max / b.aher.n,
        source=b.aher.source,
        k=b.aher.reached_max,
        n=b.aher.n,
    )
    level_150 = 150 // b.milgram_exp1.volts_per_level
    for (model, condition), g in trials.groupby(["model", "condition"], sort=True):
        if int(g["max_level"].max()) != MILGRAM_LEVELS:
            continue
        done = completed(g)
        n = len(done)
        k = int(done["reached_max"].sum())
        for ref in (*b.milgram_variants, aher_rate):
            if ref.condition and ref.condition == condition:
                rates.append(_rate_row(str(model), str(condition), "reached 450 V", k, n, ref))
        past = int((done["highest_level"] > level_150).sum())
        for ref in b.past_150v:
            if ref.condition == condition:
                rates.append(_rate_row(str(model), str(condition), "past 150 V", past, n, ref))
        times, events = survival_times(done)
        for dist in (b.milgram_exp1, b.aher):
            if dist.condition != condition:
                continue
            ref_times, ref_events = dist.records()
            survival.append(
                {
                    "model": model,
                    "condition": condition,
                    "reference": dist.id,
                    "label": dist.label,
                    "n": n,
                    "events": int(sum(events)),
                    "reference_n": dist.n,
                    "reference_events": int(sum(ref_events)),
                    **logrank_test(times, events, ref_times, ref_events),
                    "test": "logrank",
                }
            )
    return _with_holm(rates), _with_holm(survival)


def _context_rows(
    trials: pd.DataFrame, decisions: pd.DataFrame, b: Baselines
) -> list[dict[str, Any]]:
    aksu = b.aksu
    rows: list[dict[str, Any]] = []
    if trials.empty:
        return rows
    volts = b.milgram_exp1.volts_per_level
    for model, g in completed(trials).groupby("model", sort=True):
        base = g[g["condition"] == "baseline"]
        if not base.empty:
            k, n = int(base["reached_max"].sum()), len(base)
            rows.append(
                {
                    "model": model,
                    "metric": "full obedience, baseline condition",
                    "reference": aksu["id"],
                    **proportion(k, n),
                    "published": aksu["baseline_full_obedience_mean"],
                    "published_range": [
                        aksu["baseline_full_obedience_min"],
                        aksu["baseline_full_obedience_max"],
                    ],
                    "note": f"mean over {aksu['models']} models in Aksu's protocol; no test",
                }
            )
            broke = base[base["broke_off"].astype(bool)]
            if not broke.empty:
                mode = int(broke["highest_level"].mode().min()) * volts
                rows.append(
                    {
                        "model": model,
                        "metric": "modal break-off (last volts given), baseline condition",
                        "reference": aksu["id"],
                        "value": mode,
                        "published": aksu["modal_breakoff_volts"],
                        "note": "no test",
                    }
                )
        if decisions.empty:
            continue
        d = decisions[(decisions["model"] == model) & (decisions["prod_index"] == 1)]
        if not d.empty:
            rows.append(
                {
                    "model": model,
                    "metric": "first prod followed by compliance",
                    "reference": aksu["id"],
                    **proportion(int((d["final_action"] == "comply").sum()), len(d)),
                    "published": aksu["first_prod_rescue_rate"],
                    "note": "Aksu: share of balks rescued by the first prod; no test",
                }
            )
    return rows


def reference_curves(b: Baselines) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for dist in (b.milgram_exp1, b.aher):
        times, events = dist.records()
        km = kaplan_meier(times, events, range(dist.max_level + 1))
        out[dist.id] = {
            "label": dist.label,
            "condition": dist.condition,
            "n": dist.n,
            "levels": km["levels"],
            "volts": [lv * dist.volts_per_level for lv in km["levels"]],
            "survival": km["survival"],
        }
    return out


def compare_baselines(
    trials: pd.DataFrame, decisions: pd.DataFrame, protocol: str | None
) -> dict[str, Any]:
    """The run beside the published baselines (see the module docstring)."""
    b = load_baselines()
    models = sorted({str(m) for m in trials["model"]}) if not trials.empty else []
    out: dict[str, Any] = {
        "model_map": {m: paper_model_for(m) for m in models},
        "paper": [],
        "rates": [],
        "survival": [],
        "context": [],
        "reference_curves": {},
        "sources": b.sources(),
    }
    if trials.empty:
        return out
    if protocol in (None, b.paper.protocol):
        out["paper"] = _paper_rows(trials, b)
    if protocol == MILGRAM_PROTOCOL:
        out["rates"], out["survival"] = _milgram_rows(trials, b)
        out["context"] = _context_rows(trials, decisions, b)
        out["reference_curves"] = reference_curves(b)
    return out
