"""Start-up time of ``obedience --help`` against ``python -c "import typer, rich"``.

Both run side by side in the same environment, interleaved, so machine noise affects them
alike; the statistic is the ratio of the medians. Target: at most 2.5x. Also timed, for
information: ``obedience protocols`` and ``obedience show`` on a small scripted run.

    python benchmarks/cli_startup.py [--rounds 15]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 2.5


def _time(cmd: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def _small_run(directory: Path) -> Path:
    """A one-trial scripted run for ``show`` to read, made through the library API."""
    import obedience

    config = obedience.RunConfig(models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=1)
    run_dir = directory / "run"
    obedience.run(config, run_dir, label=False, report=False)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cli = [sys.executable, "-c", "from obedience.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _small_run(Path(tmp))
        commands = {
            "baseline": [sys.executable, "-c", "import typer, rich"],
            "help": [*cli, "--help"],
            "protocols": [*cli, "protocols"],
            "show": [*cli, "show", str(run_dir)],
        }
        for cmd in commands.values():  # warm the file cache and bytecode
            _time(cmd)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, cmd in commands.items():
                samples[name].append(_time(cmd))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["baseline"]
    print(f"{'command':<12} {'median s':>9} {'min s':>7} {'x baseline':>10}")
    for name, values in samples.items():
        print(f"{name:<12} {medians[name]:>9.3f} {min(values):>7.3f} {medians[name] / base:>10.2f}")
    ratio = medians["help"] / base
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"obedience --help / import typer, rich = {ratio:.2f} (target <= {TARGET}): {verdict}")
    print(
        json.dumps(
            {
                "help_over_baseline": round(ratio, 3),
                "help_s": round(medians["help"], 4),
                "baseline_s": round(base, 4),
                "protocols_s": round(medians["protocols"], 4),
                "show_s": round(medians["show"], 4),
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
