"""What a trial requires, as code: pure, no I/O, no clock."""

from protocol.model import Arm, Facts, Kind, OncePer, Parameter, Protocol, RuleSpec, VisitWindow
from protocol.state import ParticipantState
from protocol.versions import ProtocolHistory, Version, VersionError, amended

__all__ = [
    "Arm",
    "Facts",
    "Kind",
    "OncePer",
    "Parameter",
    "ParticipantState",
    "Protocol",
    "ProtocolHistory",
    "RuleSpec",
    "Version",
    "VersionError",
    "VisitWindow",
    "amended",
]
