"""``trialguard protocol list``: the installed protocol packages, each study's versions with their
effective dates and ruleset fingerprints, and the packages that failed to load with the reason."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from protocol.fingerprint import FingerprintError, fingerprint
from protocol.registry import Installed
from protocol.versions import Version


def _version(version: Version) -> dict[str, Any]:
    return {
        "version": version.name,
        "effective": None if version.effective is None else version.effective.isoformat(),
        "at_sites": {site: date.isoformat() for site, date in version.at_sites},
        "fingerprint": fingerprint(version.protocol),
    }


def describe(study: Installed) -> dict[str, Any]:
    """One installed study as plain data: its versions, or why its package failed to load."""
    entry: dict[str, Any] = {
        "study_id": study.study_id,
        "entry_point": study.target,
        "distribution": study.distribution,
    }
    if study.history is None:
        assert study.error is not None
        return {**entry, "error": study.error.reason}
    try:
        versions = [_version(v) for v in study.history.versions]
    except FingerprintError as e:
        return {**entry, "error": f"fingerprint: {e}"}
    return {**entry, "title": study.history.current.title, "versions": versions}


def _effective(version: dict[str, Any]) -> str:
    since = "from the beginning" if version["effective"] is None else f"from {version['effective']}"
    sites = ", ".join(f"{site} from {date}" for site, date in version["at_sites"].items())
    return since + (f" ({sites})" if sites else "")


def print_listing(studies: Sequence[Installed], fmt: str, out: TextIO) -> int:
    """Print every installed study; 0 when all loaded, 1 when one failed (or none is installed)."""
    described = [describe(s) for s in studies]
    failed = [d for d in described if "error" in d]
    if fmt == "json":
        print(json.dumps({"studies": described}, indent=2, sort_keys=True), file=out)
    else:
        for d in described:
            where = f"{d['entry_point']}, {d['distribution'] or 'unknown distribution'}"
            if "error" in d:
                print(f"{d['study_id']}  FAILED TO LOAD ({where}): {d['error']}", file=out)
                continue
            print(f"{d['study_id']}  {d['title']}  ({where})", file=out)
            for v in d["versions"]:
                print(f"  v{v['version']}  effective {_effective(v)}  fingerprint {v['fingerprint']}", file=out)
        loaded = len(described) - len(failed)
        print(f"{loaded} protocol package(s) loaded, {len(failed)} failed", file=out)
    return 1 if failed or not described else 0
