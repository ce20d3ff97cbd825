"""The import-linter contracts (pyproject.toml, run by ``make lint``) cover every engine module: a new
module under protocol/ is either a protocol package registered by entry point or listed among
the modules forbidden to import one."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from protocol.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def test_every_engine_module_under_protocol_is_forbidden_to_import_a_protocol_package() -> None:
    packages = {e.value.partition(":")[0].split(".")[1] for e in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    engine = {
        f"protocol.{path.stem if path.suffix == '.py' else path.name}"
        for path in (ROOT / "protocol").iterdir()
        if path.name != "__init__.py"
        and (path.suffix == ".py" or (path / "__init__.py").exists())
        and path.name not in packages
    }
    (forbidden,) = [c for c in _contracts() if c["type"] == "forbidden"]
    assert forbidden["forbidden_modules"] == [f"protocol.{p}" for p in sorted(packages)]
    sources = set(forbidden["source_modules"])
    assert engine <= sources, f"add to the forbidden contract's source_modules: {sorted(engine - sources)}"
    assert {"contracts", "events", "services"} <= sources


def test_no_contract_is_weakened_by_ignored_imports() -> None:
    assert [c["name"] for c in _contracts() if c.get("ignore_imports")] == []
