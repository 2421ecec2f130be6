"""What the docs say about the papers' own tables follows from the numbers transcribed from
them (genreid/configs/reproduce/*.yaml), so a claim cannot drift from its source."""

from __future__ import annotations

from pathlib import Path

from genreid.engine.reproduce.spec import load_table

RESULTS = (Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md").read_text()


def best_gain(values: dict, column: str) -> tuple[float, str]:
    """A column's best rank-1 gain over row 0 (the baseline), and the row that gives it."""
    base = values[("0", column)]["rank1"]
    rows = [(v["rank1"] - base, r) for (r, c), v in values.items() if c == column and r != "0"]
    return max(rows)


def test_lsro_table_2_claims_in_results_follow_its_numbers():
    values = load_table("lsro2").paper_for("market1501").values
    gains = {c: best_gain(values, c) for c in ("lsro", "all_in_one", "pseudo_label")}
    assert [round(gains[c][0], 2) for c in gains] == [4.37, 3.51, 2.65]
    assert gains["lsro"][1] == "24000" and gains["all_in_one"][1] == "18000"
    for column, (gain, row) in gains.items():
        rank1 = values[(row, column)]["rank1"]
        assert f"+{gain:.2f}" in RESULTS and f"{rank1:.2f}" in RESULTS, column
    rows = [r for (r, c) in values if c == "lsro" and r != "0"]
    rank1 = {(r, c): v["rank1"] for (r, c), v in values.items()}
    above = [r for r in rows if rank1[(r, "all_in_one")] > rank1[(r, "pseudo_label")]]
    assert len(above) == 4 and len(rows) == 5  # "All-in-one is above Pseudo label in 4 of 5"
    assert "above Pseudo label in 4 of the 5 rows" in RESULTS
    assert values[("36000", "all_in_one")]["rank1"] > values[("36000", "lsro")]["rank1"]
    assert "LSRO +5 rank-1" not in RESULTS and "LSRO > Pseudo label > All-in-one" not in RESULTS


def test_slsr_claims_name_what_the_slsr_tables_hold():
    """slsr4's paper cells are the DenseNet-121 results (its baseline 90.05), and no doc says
    SLSR's VIPeR table has LSRO or baseline rows."""
    slsr4 = load_table("slsr4").paper_for("market1501").values
    assert slsr4[("0", "k3")] == {"rank1": 90.05, "mAP": 74.16}  # DenseNet-121's baseline
    assert slsr4[("12000", "k3")] == {"rank1": 92.43, "mAP": 79.08}  # workshop: SLS + DenseNet
    assert "SLSR > LSRO > baseline" not in RESULTS
    assert "no LSRO" in RESULTS
