"""Access to the real-frame fixture corpus in tests/fixtures (see its README and manifest)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, List

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def manifest(kind: str) -> List[Dict[str, Any]]:
    entries = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    return [e for e in entries if e["kind"] == kind]


def raw_bytes(entry: Dict[str, Any]) -> bytes:
    if entry.get("raw_base64"):
        return base64.b64decode(entry["raw_base64"])
    return (FIXTURES / entry["file"]).read_bytes()


def frame_text(entry: Dict[str, Any]) -> str:
    return (FIXTURES / entry["file"]).read_text(encoding="utf-8")


def rest_body(entry: Dict[str, Any]) -> Any:
    return json.loads(frame_text(entry))
