"""The docs' generated tables stay equal to what the engine prints: the model option
table of docs/models.md is `attnlab config --markdown`."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- begin: attnlab config --markdown -->\n", "<!-- end: attnlab config --markdown -->"


def test_model_option_table_is_generated():
    binary = Path(os.environ.get("ATTNLAB_BIN", REPO / "build" / "attnlab"))
    if not binary.is_file():
        if os.environ.get("ATTNLAB_REQUIRE_GOLDEN", "") not in ("", "0"):
            pytest.fail(f"{binary} not found")
        pytest.skip(f"{binary} not found (build it)")
    table = subprocess.run([str(binary), "config", "--markdown"], capture_output=True, text=True,
                           check=True, timeout=60).stdout
    doc = (REPO / "docs" / "models.md").read_text()
    assert BEGIN in doc and END in doc, "docs/models.md lost its generated option table markers"
    copy = doc[doc.index(BEGIN) + len(BEGIN):doc.index(END)]
    assert copy == table, "docs/models.md's option table differs from `attnlab config --markdown`; paste it in"
    assert "`model.layers` | `2` |" in table and "(1..256)" in table
