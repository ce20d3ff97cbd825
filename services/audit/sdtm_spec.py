"""The metadata of the exported SDTM datasets: variables in SDTMIG 3.4 order, labels, types, origins.

One table per dataset, read by the writers (variable labels, dataset label, sort keys) and by
``services.audit.define`` (the define.xml-style metadata), so the files and their description
cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NAME, MAX_LABEL, MAX_VALUE_BYTES = 8, 40, 200
"""SAS XPORT version 5 limits: variable names, variable and dataset labels, character values (bytes)."""


@dataclass(frozen=True)
class Variable:
    """One variable of a dataset.

    Attributes:
        name: the variable name (at most 8 characters).
        label: its SDTM label (at most 40 characters).
        data_type: define.xml data type: ``text``, ``integer`` or ``datetime``.
        core: SDTMIG core: ``Req``, ``Exp`` or ``Perm``.
        origin: define.xml origin type: ``Collected``, ``Derived``, ``Assigned`` or ``Protocol``.
        comment: how it is derived, where that is not obvious.
    """

    name: str
    label: str
    data_type: str
    core: str
    origin: str
    comment: str = ""

    @property
    def numeric(self) -> bool:
        """Stored as a number (SAS numeric, 8 bytes) rather than text."""
        return self.data_type == "integer"


@dataclass(frozen=True)
class Dataset:
    """One dataset: name, label, define.xml class and structure, sort keys, variables."""

    name: str
    label: str
    sdtm_class: str
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]

    @property
    def labels(self) -> dict[str, str]:
        """Variable name → label, in variable order."""
        return {v.name: v.label for v in self.variables}


def _v(name: str, label: str, core: str, origin: str, data_type: str = "text", comment: str = "") -> Variable:
    return Variable(name, label, data_type, core, origin, comment)


DV = Dataset(
    name="DV",
    label="Protocol Deviations",
    sdtm_class="EVENTS",
    structure="One record per protocol deviation per subject",
    keys=("STUDYID", "USUBJID", "DVSEQ"),
    variables=(
        _v("STUDYID", "Study Identifier", "Req", "Protocol"),
        _v("DOMAIN", "Domain Abbreviation", "Req", "Assigned"),
        _v("USUBJID", "Unique Subject Identifier", "Req", "Derived", comment="STUDYID-SITEID-SUBJID"),
        _v("DVSEQ", "Sequence Number", "Req", "Derived", "integer", "per subject, in the order raised"),
        _v("DVREFID", "Reference ID", "Perm", "Assigned", comment="TrialGuard deviation id"),
        _v("DVSPID", "Sponsor-Defined Identifier", "Perm", "Assigned", comment="protocol rule id"),
        _v("DVTERM", "Protocol Deviation Term", "Req", "Derived", comment="the rule's term"),
        _v("DVDECOD", "Protocol Deviation Coded Term", "Perm", "Assigned", comment="sponsor list per rule"),
        _v("DVCAT", "Category for Protocol Deviation", "Perm", "Assigned"),
        _v("DVSCAT", "Subcategory for Protocol Deviation", "Perm", "Assigned", comment="protocol section"),
        _v("EPOCH", "Epoch", "Perm", "Derived", comment="participant lifecycle before the trigger"),
        _v("DVSTDTC", "Start Date/Time of Deviation", "Perm", "Collected", "datetime", "the trigger's event time"),
        _v("DVSTDY", "Study Day of Start of Deviation", "Perm", "Derived", "integer", "from DM.RFSTDTC, no day 0"),
    ),
)

SUPPDV = Dataset(
    name="SUPPDV",
    label="Supplemental Qualifiers for DV",
    sdtm_class="RELATIONSHIP",
    structure="One record per supplemental qualifier per related parent domain record",
    keys=("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
    variables=(
        _v("STUDYID", "Study Identifier", "Req", "Protocol"),
        _v("RDOMAIN", "Related Domain Abbreviation", "Req", "Assigned"),
        _v("USUBJID", "Unique Subject Identifier", "Req", "Derived"),
        _v("IDVAR", "Identifying Variable", "Exp", "Assigned"),
        _v("IDVARVAL", "Identifying Variable Value", "Exp", "Derived"),
        _v("QNAM", "Qualifier Variable Name", "Req", "Assigned"),
        _v("QLABEL", "Qualifier Variable Label", "Req", "Assigned"),
        _v("QVAL", "Data Value", "Req", "Derived"),
        _v("QORIG", "Origin", "Req", "Assigned"),
        _v("QEVAL", "Evaluator", "Exp", "Assigned"),
    ),
)

DM = Dataset(
    name="DM",
    label="Demographics",
    sdtm_class="SPECIAL PURPOSE",
    structure="One record per subject",
    keys=("STUDYID", "USUBJID"),
    variables=(
        _v("STUDYID", "Study Identifier", "Req", "Protocol"),
        _v("DOMAIN", "Domain Abbreviation", "Req", "Assigned"),
        _v("USUBJID", "Unique Subject Identifier", "Req", "Derived", comment="STUDYID-SITEID-SUBJID"),
        _v("SUBJID", "Subject Identifier for the Study", "Req", "Collected", comment="participant id"),
        _v("RFSTDTC", "Subject Reference Start Date/Time", "Exp", "Derived", "datetime"),
        _v("RFENDTC", "Subject Reference End Date/Time", "Exp", "Derived", "datetime", "last exposure"),
        _v("RFXSTDTC", "Date/Time of First Study Treatment", "Exp", "Derived", "datetime"),
        _v("RFXENDTC", "Date/Time of Last Study Treatment", "Exp", "Derived", "datetime"),
        _v("RFICDTC", "Date/Time of Informed Consent", "Exp", "Derived", "datetime", "consent first complete"),
        _v("RFPENDTC", "Date/Time of End of Participation", "Exp", "Derived", "datetime"),
        _v("DTHDTC", "Date/Time of Death", "Exp", "Derived", "datetime", "not in the event log: null"),
        _v("DTHFL", "Subject Death Flag", "Exp", "Derived", comment="not in the event log: null"),
        _v("SITEID", "Study Site Identifier", "Req", "Collected"),
        _v("AGE", "Age", "Exp", "Derived", "integer", "completed years at RFICDTC"),
        _v("AGEU", "Age Units", "Exp", "Assigned"),
        _v("SEX", "Sex", "Req", "Collected"),
        _v("RACE", "Race", "Exp", "Collected", comment="not collected by the event log: null"),
        _v("ARMCD", "Planned Arm Code", "Exp", "Derived"),
        _v("ARM", "Description of Planned Arm", "Exp", "Derived"),
        _v("ACTARMCD", "Actual Arm Code", "Exp", "Derived"),
        _v("ACTARM", "Description of Actual Arm", "Exp", "Derived"),
        _v("ARMNRS", "Reason Arm and/or Actual Arm is Null", "Exp", "Derived"),
        _v("ACTARMUD", "Description of Unplanned Actual Arm", "Exp", "Derived"),
        _v("COUNTRY", "Country", "Req", "Protocol"),
        _v("DMDTC", "Date/Time of Collection", "Perm", "Collected", "datetime", "registration"),
        _v("DMDY", "Study Day of Collection", "Perm", "Derived", "integer", "from RFSTDTC, no day 0"),
    ),
)

DATASETS: tuple[Dataset, ...] = (DM, DV, SUPPDV)
