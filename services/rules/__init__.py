"""The rules service: participant events in, deviations and safety alerts out, exactly once."""

from services.rules.records import MAX_DEAD_LETTER_BYTES, MAX_HEADER_CHARS, Outgoing, RecordHandler
from services.rules.rounds import DEFAULT_SNAPSHOT_EVERY, SNAPSHOT_OFFSET, rebuild_from_log, restore, restore_snapshots
from services.rules.service import RulesService

__all__ = [
    "DEFAULT_SNAPSHOT_EVERY",
    "MAX_DEAD_LETTER_BYTES",
    "MAX_HEADER_CHARS",
    "SNAPSHOT_OFFSET",
    "Outgoing",
    "RecordHandler",
    "RulesService",
    "rebuild_from_log",
    "restore",
    "restore_snapshots",
]
