"""The rules service: participant events in, deviations and safety alerts out, exactly once."""

from services.rules.partitions import rebuild_from_log, restore_snapshots
from services.rules.records import MAX_DEAD_LETTER_BYTES, MAX_HEADER_CHARS, Outgoing, RecordHandler
from services.rules.service import RulesService, rules_group_id
from services.rules.weather import ConfigurationError

__all__ = [
    "MAX_DEAD_LETTER_BYTES",
    "MAX_HEADER_CHARS",
    "ConfigurationError",
    "Outgoing",
    "RecordHandler",
    "RulesService",
    "rebuild_from_log",
    "restore_snapshots",
    "rules_group_id",
]
