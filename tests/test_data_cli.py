"""`genreid data info|check` and the top-level CLI, driven through typer's runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genreid import __version__
from genreid.cli import app
from tests.conftest import VIPER_ROOT
from tests.test_datasets_viper_prid import make_viper

runner = CliRunner()


def test_help_lists_subcommands_and_version():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("data", "evaluate", "quickstart"):
        assert cmd in res.output
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_info_json_has_totals_and_splits(tmp_path):
    root = make_viper(tmp_path / "viper", n=12)
    res = runner.invoke(app, ["data", "info", "-d", "viper", "-r", str(root), "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert (stats["images"], stats["identities"], stats["cameras"]) == (24, 12, 2)
    assert set(stats["splits"]) == {"train", "query", "gallery"}
    for split in stats["splits"].values():
        assert {"images", "identities", "cameras"} <= set(split)
    assert stats["splits"]["query"]["identities"] == 6


def test_info_plot_writes_png(tmp_path):
    root = make_viper(tmp_path / "viper", n=12)
    out = tmp_path / "hist.png"
    res = runner.invoke(app, ["data", "info", "-d", "viper", "-r", str(root), "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not VIPER_ROOT.is_dir(), reason="../shared VIPeR absent")
def test_info_real_viper_prints_counts():
    res = runner.invoke(app, ["data", "info", "--dataset", "viper", "--root", str(VIPER_ROOT)])
    assert res.exit_code == 0, res.output
    total = [line for line in res.output.splitlines() if "total" in line][0]
    assert "1,264" in total and "632" in total


def test_check_names_missing_folder_without_traceback(tmp_path):
    res = runner.invoke(app, ["data", "check", "-d", "market1501", "-r", str(tmp_path)])
    assert res.exit_code == 1
    assert "expected bounding_box_train/ with files like 0002_c1s1_000451_03.jpg" in res.output
    assert "Traceback" not in res.output


def test_check_lists_corrupt_images(tmp_path):
    root = make_viper(tmp_path / "viper", n=6)
    bad = root / "cam_b" / "002_90.bmp"
    bad.write_bytes(bad.read_bytes()[:20])  # truncated
    (root / "cam_a" / "004_0.bmp").write_bytes(b"garbage")
    res = runner.invoke(app, ["data", "check", "-d", "viper", "-r", str(root)])
    assert res.exit_code == 1
    assert "2 of 12 images cannot be read" in res.output
    assert str(bad) in res.output and "004_0.bmp" in res.output
    assert "Traceback" not in res.output


def test_check_ok(tmp_path):
    root = make_viper(tmp_path / "viper", n=6)
    res = runner.invoke(app, ["data", "check", "-d", "viper", "-r", str(root)])
    assert res.exit_code == 0 and "12 images" in res.output


def test_unknown_dataset_lists_names(tmp_path):
    res = runner.invoke(app, ["data", "info", "-d", "market", "-r", str(tmp_path)])
    assert res.exit_code == 1  # alias resolves, layout is wrong
    res = runner.invoke(app, ["data", "info", "-d", "imagenet", "-r", str(tmp_path)])
    assert res.exit_code == 1 and "Known: market1501" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "32x8"], "too small"),
        (["--seed", "-1"], "greater than or equal to 0"),
        (["--out-is-file"], "error:"),
    ],
)
def test_synth_bad_input_is_a_clean_error(tmp_path, args, message):
    out = tmp_path / "out"
    if args == ["--out-is-file"]:
        out.write_text("a file")
        args = []
    res = runner.invoke(app, ["data", "synth", "--out", str(out), "--ids", "4", *args])
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output


def test_synth_refuses_to_overwrite_foreign_market_tree(tmp_path):
    (tmp_path / "bounding_box_train").mkdir()
    res = runner.invoke(app, ["data", "synth", "--out", str(tmp_path), "--ids", "4"])
    assert res.exit_code == 1 and "error:" in res.output and "Traceback" not in res.output
