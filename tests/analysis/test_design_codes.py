"""Analysis reads the design's factor codes that the trials recorded, not condition names."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.runs import make_run

from obedience.analysis import build_tables, statistics
from obedience.protocols import load_protocol
from obedience.runner import RunConfig
from obedience.store import RunStore

SRC = Path(__file__).parents[2] / "src/obedience/protocols/data/pihlakas2026.toml"


def test_factor_effects_come_from_recorded_codes_whatever_the_names(tmp_path: Path) -> None:
    # The same design with cells named DC_NS_FB ...: no name parsing could find them.
    text = SRC.read_text(encoding="utf-8")
    text = text.replace("# their codes: DC-NS-FB", "# their codes: DC_NS_FB")
    text = text.replace("[[design.factors]]", '[design]\nseparator = "_"\n\n[[design.factors]]', 1)
    text = text.replace('extends = "PC-NS-NF"', 'extends = "PC_NS_NF"')
    text = text.replace('extends = "PC-NS-FB"', 'extends = "PC_NS_FB"')
    text = text.replace('extends = "PC-WS-NF"', 'extends = "PC_WS_NF"')
    text = text.split("default_conditions = ")[0] + "\n".join(
        text.split("default_conditions = ")[1].split("\n")[1:]
    )
    path = tmp_path / "renamed.toml"
    path.write_text(text, encoding="utf-8")
    protocol = load_protocol(path)
    assert "DC_NS_FB" in protocol.conditions and protocol.factors_of("DC_NS_FB")
    config = RunConfig(
        models=["scripted:threshold:7"],
        protocol=str(path),
        conditions=["DC_NS_FB", "PC_NS_FB", "DC_NS_NF", "PC-NS-NF-strict"],
        trials=2,
    )
    run = make_run(tmp_path / "run", config)
    with RunStore.open(run) as store:
        tables = build_tables(store)
        stats = statistics(store)
    recorded = dict(zip(tables.trials["condition"], tables.trials["factors"], strict=True))
    assert recorded["PC-NS-NF-strict"] == ""  # a variant is not a cell
    assert '"forced presses": "FB"' in recorded["DC_NS_FB"]
    factors = {r["factor"]: r for r in stats["factor_effects"]}
    assert set(factors) == {"comments", "forced presses"}
    assert factors["comments"]["conditions_from"] == ["DC_NS_FB"]
    assert factors["forced presses"]["conditions_to"] == ["DC_NS_FB"]
