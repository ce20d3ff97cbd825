"""What a trial requires, as code: pure, no I/O, no clock."""

from protocol.model import Evidence, Kind, OncePer, Protocol, RuleSpec
from protocol.state import ParticipantState

__all__ = ["Evidence", "Kind", "OncePer", "ParticipantState", "Protocol", "RuleSpec"]
