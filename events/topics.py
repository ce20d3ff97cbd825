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
        shadow: a candidate protocol version run in shadow beside the live service: it reads the
            live participant-events but writes only topics of its own
            (``<namespace>.<study>.shadow.<version>.deviations`` and so on), so it changes nothing
            the live side owns.
    """

    study_id: str
    namespace: str = DEFAULT_NAMESPACE
    shadow: str | None = None

    def _name(self, suffix: str) -> str:
        return f"{self.namespace}.{self.study_id}.{suffix}"

    def _output(self, suffix: str) -> str:
        return self._name(suffix if self.shadow is None else f"shadow.{self.shadow}.{suffix}")

    @property
    def consumer_group(self) -> str:
        """The rules service's consumer group (a shadow run has its own)."""
        return self._output("rules")

    @property
    def participant_events(self) -> str:
        """Input: contract-v1 participant events, key = participant id. The source of truth."""
        return self._name("participant-events")

    @property
    def deviations(self) -> str:
        """Output: DeviationRaised, SafetyAlertRaised and FindingSuperseded, key = participant id."""
        return self._output("deviations")

    @property
    def participant_state(self) -> str:
        """Derived: the latest snapshot of each participant's state, compacted, key = participant id.

        Partition n holds the participants of participant-events partition n.
        """
        return self._output("participant-state")

    @property
    def dead_letter(self) -> str:
        """Input that broke the contract: the original bytes, with the reason in headers."""
        return self._output("dead-letter")

    @property
    def finding_reviews(self) -> str:
        """The dashboard's review actions: FindingReviewed, key = participant id. Kept forever."""
        return self._name("finding-reviews")

    @property
    def access_log(self) -> str:
        """Who changed which user, token or source: AccessChanged, key = the subject's name, one
        partition (one order). Kept forever; the dashboard folds it into each user's authority."""
        return self._name("access-log")

    @property
    def audit_checkpoints(self) -> str:
        """Audit: signed hash-chain checkpoints of participant-events partitions, written by the rules service."""
        return self._output("audit-checkpoints")
