"""Study-level SDTM settings: what the event log cannot say per participant.

One ``SdtmStudy`` per study id, looked up by ``sdtm_study()``. The DV, SUPPDV and DM code reads
every trial-specific choice from here (which event is the first exposure, how the lifecycle maps to
epochs, the country the study runs in), so a second trial with no dose, or other epochs, gets its
export from the same code with settings of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SCREENING, TREATMENT, FOLLOW_UP = "SCREENING", "TREATMENT", "FOLLOW-UP"
"""EPOCH terms (CDISC codelist EPOCH, C99079)."""

CAR_T_EPOCHS: Mapping[str, str] = MappingProxyType(
    {
        "unknown": SCREENING,
        "registered": SCREENING,
        "consented": SCREENING,
        "screening": SCREENING,
        "eligible": SCREENING,
        "screen-failed": SCREENING,
        "enrolled": TREATMENT,
        "leukapheresis": TREATMENT,
        "lymphodepletion": TREATMENT,
        # The infusion ends treatment: what happens after it happens in follow-up.
        "infused": FOLLOW_UP,
        "follow-up": FOLLOW_UP,
        "completed": FOLLOW_UP,
    }
)
"""EPOCH for each base stage of ``services.presentation.lifecycle.lifecycle`` in a CAR-T trial."""


@dataclass(frozen=True)
class SdtmStudy:
    """What the SDTM export of one study needs beyond its events and protocol.

    Attributes:
        study_id: the study.
        country: COUNTRY of every site, ISO 3166-1 alpha-3 (SDTM's COUNTRY codelist).
        country_source: where ``country`` comes from, for the define metadata and the reader.
        exposure_events: event types that are exposure to the investigational product; the first
            one is RFSTDTC and RFXSTDTC, the last RFXENDTC. Empty for a study without a dose: then
            a participant counts as treated with the arm they were assigned.
        reference_start_events: event types whose first occurrence is RFSTDTC when the study
            has no exposure events (e.g. enrollment); ignored otherwise.
        reference_start_rule: the RFSTDTC rule in words (README, define metadata).
        epochs: EPOCH per base stage of the participant lifecycle.
    """

    study_id: str
    country: str
    country_source: str
    exposure_events: tuple[str, ...]
    reference_start_rule: str
    reference_start_events: tuple[str, ...] = ()
    epochs: Mapping[str, str] = field(default_factory=lambda: CAR_T_EPOCHS)

    @property
    def reference_events(self) -> tuple[str, ...]:
        """The event types whose first occurrence is RFSTDTC."""
        return self.exposure_events or self.reference_start_events


NCT06904729 = SdtmStudy(
    study_id="NCT06904729",
    country="CHN",
    country_source="ClinicalTrials.gov record NCT06904729, Locations: every site is in China",
    exposure_events=("CarTInfused",),
    reference_start_rule="RFSTDTC is the first CarTInfused: first exposure to the investigational product",
)

STUDIES: dict[str, SdtmStudy] = {s.study_id: s for s in (NCT06904729,)}


class UnknownSdtmStudyError(KeyError):
    """A study has no SDTM settings (its country and reference start are not known)."""


def sdtm_study(study_id: str) -> SdtmStudy:
    """The SDTM settings of a study.

    Raises:
        UnknownSdtmStudyError: the study has none; add an ``SdtmStudy`` to ``STUDIES``.
    """
    try:
        return STUDIES[study_id]
    except KeyError:
        known = ", ".join(sorted(STUDIES))
        raise UnknownSdtmStudyError(f"no SDTM settings for study {study_id!r} (known: {known})") from None
