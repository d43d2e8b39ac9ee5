"""Validate a written mpq.json against docs/mpq.schema.json (shared by the tests of every writer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "mpq.schema.json").read_text())


def validate_mpq(doc: dict[str, Any] | Path) -> dict[str, Any]:
    data = json.loads(Path(doc).read_text()) if isinstance(doc, Path) else doc
    jsonschema.validate(data, SCHEMA)
    return data
