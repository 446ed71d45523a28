"""The README's table of bad inputs is a table of tests: every row names a test that exists (and, for a
parametrized one, a case it has), and the table has the 25 kinds the reliability issue asked for."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (?P<input>[^|]+) \| (?P<says>.+) \| `(?P<file>tests/[\w/]+\.py)::(?P<test>\w+)(\[(?P<case>[^\]]+)\])?` \|$")


def table_rows() -> list[re.Match]:
    section = REPO.joinpath("README.md").read_text().split("## When something goes wrong", 1)[1].split("\n## ", 1)[0]
    return [match for line in section.splitlines() if (match := ROW.match(line))]


def test_every_row_names_an_existing_test_and_case() -> None:
    rows = table_rows()
    assert len(rows) >= 25
    for row in rows:
        source = (REPO / row["file"]).read_text()
        assert re.search(rf"^def {row['test']}\(", source, re.MULTILINE), row.group(0)
        if row["case"]:
            assert f'"{row["case"]}"' in source, row.group(0)


def test_every_kind_is_listed_once() -> None:
    kinds = [row["input"] for row in table_rows()]
    assert len(kinds) == len(set(kinds))
