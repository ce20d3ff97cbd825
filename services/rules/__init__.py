"""The rules service: participant events in, deviations and safety alerts out, exactly once."""

from services.rules.records import MAX_DEAD_LETTER_BYTES, MAX_HEADER_CHARS, Outgoing, RecordHandler
from services.rules.rounds import DEFAULT_SNAPSHOT_EVERY, SNAPSHOT_OFFSET, rebuild_from_log, restore, restore_snapshots
from services.rules.service import RulesService, rules_group_id
from services.rules.weather import ConfigurationError

__all__ = [
    "DEFAULT_SNAPSHOT_EVERY",
    "MAX_DEAD_LETTER_BYTES",
    "MAX_HEADER_CHARS",
    "SNAPSHOT_OFFSET",
    "ConfigurationError",
    "Outgoing",
    "RecordHandler",
    "RulesService",
    "rebuild_from_log",
    "restore",
    "restore_snapshots",
    "rules_group_id",
]
