"""Event sourcing: fold events into participant state, decide findings, name the topics."""

from events.decide import Step, decide, finding_id, process
from events.fold import fold
from events.topics import Topics

__all__ = ["Step", "Topics", "decide", "finding_id", "fold", "process"]
