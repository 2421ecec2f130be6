"""core.files: blocks of a results page that commands rewrite, and output folders."""

from __future__ import annotations

import pytest

from genreid.core.errors import RunFolderError
from genreid.core.files import make_output_dir, update_marked_block


def test_update_marked_block_replaces_appends_and_creates(tmp_path):
    page = tmp_path / "page.md"
    assert update_marked_block(page, "t1", "first") == "created"
    assert page.read_text() == "<!-- begin t1 -->\nfirst\n<!-- end t1 -->\n"
    page.write_text("intro\n\n" + page.read_text() + "\noutro\n")
    assert update_marked_block(page, "t1", "second\n") == "replaced"
    assert page.read_text() == "intro\n\n<!-- begin t1 -->\nsecond\n<!-- end t1 -->\n\noutro\n"
    assert update_marked_block(page, "t2", "other") == "appended"
    text = page.read_text()
    assert text.endswith("outro\n\n<!-- begin t2 -->\nother\n<!-- end t2 -->\n")
    assert update_marked_block(page, "t1", "third") == "replaced"  # t2 untouched
    assert "second" not in page.read_text() and "other" in page.read_text()


def test_make_output_dir_error_says_what_to_do(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert make_output_dir(tmp_path / "a" / "b").is_dir()
    with pytest.raises(RunFolderError, match="cannot create the output folder .*another --out"):
        make_output_dir(blocker / "sub")
