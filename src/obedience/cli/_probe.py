"""``obedience probe``: P(comply) along controlled histories (see ``docs/probe.md``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from obedience.cli._app import app, console, err_console, escape_markup, fail
from obedience.store import DATABASE, RunStore, StoreError

if TYPE_CHECKING:
    from obedience.backends import Backend
    from obedience.probe import ProbeResult, ProbeSettings
    from obedience.protocols import Protocol
    from obedience.runner import RunConfig


def _default_out(protocol: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-probe-{protocol}"


def sampled_obedience(run_dir: Path, model: str, condition: str) -> dict[str, Any] | None:
    """The reached-max rate of a normal run's trials for this model and condition, if any."""
    from obedience.analysis import build_tables, summary_records

    try:
        store = RunStore.open(run_dir)
    except StoreError:
        return None
    try:
        for record in summary_records(build_tables(store).trials):
            if record["model"] == model and record["condition"] == condition:
                return {
                    "run_dir": str(run_dir),
                    "reached_max": record["reached_max"],
                    "completed": record["completed"],
                    "reached_max_rate": record["reached_max_rate"],
                }
    finally:
        store.close()
    return None


def _probe_entry(result: ProbeResult, config: RunConfig) -> dict[str, Any]:
    return {
        "probe_id": result.probe_id,
        "created_unix": time.time(),
        "model": result.settings.model,
        "condition": result.settings.condition,
        "k_max": result.settings.k_max,
        "seed": result.settings.seed,
        "on_policy": result.settings.on_policy,
        "p_full_obedience": result.p_full_obedience,
        "config": config.model_dump(mode="json"),
        **{k: v for k, v in result.info.items() if k != "on_policy_trajectories"},
    }


async def _probe(
    backend: Backend, protocol: Protocol, settings: ProbeSettings, quiet: bool
) -> tuple[ProbeResult, dict[str, Any]]:
    from obedience.backends import LlamaCppBackend
    from obedience.probe import require_scoring, run_probe

    spec = protocol.condition(settings.condition)
    try:
        require_scoring(backend, spec)
        meta = await backend.preflight()
        render = count = None
        if isinstance(backend, LlamaCppBackend):
            render, count = backend.render, backend.count_tokens
        last: dict[str, int] = {}

        def tell(history: str, i: int, n: int) -> None:
            if quiet or last.get(history) == i:
                return
            last[history] = i
            err_console.print(f"[dim]probe {history}: point {i + 1}/{n}[/]", highlight=False)

        result = await run_probe(
            backend, spec, settings, render=render, count_tokens=count, progress=tell
        )
        return result, meta
    finally:
        await backend.aclose()


@app.command()
def probe(
    model: str = typer.Option(
        "embedded", "--model", "-m", help="embedded, gguf:PATH or openai:MODEL (with logprobs)."
    ),
    protocol: str | None = typer.Option(
        None, "--protocol", "-p", help="Protocol name or .toml path (default: pihlakas2026)."
    ),
    condition: str | None = typer.Option(
        None, "--condition", "-c", help="Condition (default: the protocol's first)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory: created, or added to if it holds a run."
    ),
    k: int = typer.Option(10, "--k", help="Largest number of inserted prior decisions."),
    on_policy: int = typer.Option(
        1, "--on-policy", help="Sampled on-policy trajectories to measure."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed (stimulus and sampling), as in run."),
    temperature: float | None = typer.Option(None, "--temperature", help="On-policy sampling."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="On-policy reply cap."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    chat_template: str | None = typer.Option(
        None, "--chat-template", help="gguf: 'auto', 'gemma', or a Jinja file."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per request."),
    compare: Path | None = typer.Option(
        None, "--compare", help="A run directory whose sampled obedience rate to show beside."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Measure P(comply) at decision points along on-policy, forced and control histories."""
    from obedience.backends import BackendError, BackendOptions, TransportError, make_backend
    from obedience.probe import ProbeSettings, require_scoring
    from obedience.protocols import ProtocolError, load_protocol
    from obedience.runner import ConfigError, build_manifest, validate_config

    if k < 0:
        fail(f"--k must be 0 or more, got {k}")
    if on_policy < 0:
        fail(f"--on-policy must be 0 or more, got {on_policy}")
    if model.split(":", 1)[0] in ("scripted", "replay"):
        fail(
            f"backend {model!r} exposes no log-probabilities; the probe needs embedded, "
            "gguf:PATH or an openai:MODEL server that returns logprobs"
        )
    run_dir = out
    existing = run_dir is not None and (run_dir / DATABASE).exists()
    try:
        manifest: dict[str, Any] | None = None
        if existing:
            assert run_dir is not None
            with RunStore.open(run_dir) as store:
                manifest = store.manifest()
        name = protocol or (manifest or {}).get("config", {}).get("protocol") or "pihlakas2026"
        loaded = load_protocol(name)
        if manifest is not None and manifest.get("protocol", {}).get("sha256") not in (
            None,
            loaded.sha256,
        ):
            raise ProtocolError(
                f"{run_dir} was run with a different protocol file than {name!r}; "
                f"probe it with -p {manifest['protocol'].get('path') or name}"
            )
        cond = condition or loaded.default_conditions[0]
        spec = loaded.condition(cond)
        config = validate_config(
            {
                "models": [model],
                "protocol": name,
                "conditions": [cond],
                "trials": max(1, on_policy),
                "seed": seed,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "base_url": base_url,
                "chat_template": chat_template,
                "timeout": timeout if timeout is not None else 120.0,
            },
            "command line",
        )
        backend = make_backend(
            model,
            BackendOptions(
                base_url=config.base_url,
                chat_template=config.chat_template,
                timeout=config.timeout,
                grammar_dialect=config.grammar_dialect,
            ),
        )
        require_scoring(backend, spec)
    except (ConfigError, ProtocolError, BackendError, StoreError) as exc:
        fail(str(exc))
    import asyncio

    settings = ProbeSettings(
        model=model,
        condition=cond,
        k_max=k,
        seed=seed,
        on_policy=on_policy,
        temperature=config.temperature_for(spec),
        max_tokens=config.max_tokens_for(model, spec),
    )
    try:
        result, meta = asyncio.run(_probe(backend, loaded, settings, quiet or as_json))
    except KeyboardInterrupt:
        fail("interrupted; nothing was written", code=130)
    except (BackendError, TransportError, ProtocolError) as exc:
        fail(str(exc))
    target = run_dir or _default_out(loaded.name)
    for source in (compare, target if existing else None):
        if source is not None and result.sampled is None:
            result.sampled = sampled_obedience(source, model, cond)
    try:
        store = RunStore.open(target, write=True) if existing else RunStore.create(target)
        with store:
            if existing:
                manifest = store.manifest()
            else:
                manifest = build_manifest(
                    loaded, config, {model: {**meta, "capabilities": vars(backend.capabilities)}}
                )
                manifest["kind"] = "probe"
            manifest.setdefault("probes", []).append(_probe_entry(result, config))
            store.add_probe_rows(result.store_rows())
            store.write_manifest(manifest)
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    _print_result(result, target)


def _fmt(p: float | None, digits: int = 4) -> str:
    return "—" if p is None else f"{p:.{digits}f}"


def _fmt_raw(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 or p == 0 else f"{p:.0e}"


def _print_result(result: ProbeResult, run_dir: Path) -> None:
    from rich.table import Table

    console.print(f"run directory: {escape_markup(str(run_dir))}")
    info = result.info
    table = Table(
        title=(
            f"P(comply) by prior decisions k — {escape_markup(result.settings.model)}, "
            f"{escape_markup(result.settings.condition)} "
            f"(neutral word {escape_markup(str(info.get('neutral_word')))})"
        ),
        title_justify="left",
    )
    table.add_column("k", justify="right")
    names = list(result.histories)
    for name in names:
        table.add_column(f"{name}\nP(comply) / raw", justify="right")
    by_k: dict[int, dict[str, str]] = {}
    for name, rows in result.histories.items():
        for r in rows:
            cell = f"{_fmt(r['p_comply'], 3)} / {_fmt_raw(r['raw_mass'])}"
            slot = by_k.setdefault(int(r["k"]), {})
            slot[name] = f"{slot[name]}, {cell}" if name in slot else cell
    for kk in sorted(by_k):
        table.add_row(str(kk), *[by_k[kk].get(n, "") for n in names])
    console.print(table)
    line = f"P(full obedience) under forced choice: {_fmt(result.p_full_obedience, 6)}"
    line += f" over {len(result.full_obedience_steps)} decisions"
    if result.sampled:
        line += (
            f"; sampled obedience rate {_fmt(result.sampled['reached_max_rate'], 3)} "
            f"({result.sampled['reached_max']}/{result.sampled['completed']} trials)"
        )
    console.print(line)
    console.print(
        f"probe took {info.get('elapsed_s')} s; results stored as probe {result.probe_id}"
    )
