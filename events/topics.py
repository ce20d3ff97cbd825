"""Kafka topic names: the one place that defines them. Names carry the study."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "trialguard"


@dataclass(frozen=True)
class Topics:
    """The topics of one study.

    Args:
        study_id: the study, e.g. NCT06904729.
        namespace: the first part of every name; another namespace isolates an environment
            (a test run, a staging copy) on a shared broker.
    """

    study_id: str
    namespace: str = DEFAULT_NAMESPACE

    def _name(self, suffix: str) -> str:
        return f"{self.namespace}.{self.study_id}.{suffix}"

    @property
    def participant_events(self) -> str:
        """Input: contract-v1 participant events, key = participant id. The source of truth."""
        return self._name("participant-events")

    @property
    def deviations(self) -> str:
        """Output: DeviationRaised and SafetyAlertRaised, key = participant id."""
        return self._name("deviations")

    @property
    def participant_state(self) -> str:
        """Derived: the latest snapshot of each participant's state, compacted, key = participant id.

        Partition n holds the participants of participant-events partition n.
        """
        return self._name("participant-state")

    @property
    def dead_letter(self) -> str:
        """Input that broke the contract: the original bytes, with the reason in headers."""
        return self._name("dead-letter")

    @property
    def finding_reviews(self) -> str:
        """The dashboard's review actions: FindingReviewed, key = participant id. Kept forever."""
        return self._name("finding-reviews")

    @property
    def audit_checkpoints(self) -> str:
        """Audit: signed hash-chain checkpoints of participant-events partitions, written by the rules service."""
        return self._name("audit-checkpoints")
