"""SDTM conformance of the exported files, checked by hand where CORE needs CDISC Library metadata.

A 200-participant simulated cohort is exported to dm.xpt, dv.xpt, suppdv.xpt and define.xml, and
every file is read back (pyreadstat, ElementTree). The expectations below are written from the
SDTMIG 3.4 specifications of DM, DV and SUPPQUAL and the CDISC codelists, not from the exporter's
own tables, so a wrong table fails here.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import pandas as pd
import pyreadstat
import pytest

from services.audit.sdtm_cli import run
from services.cli import main
from services.kafka import KafkaSettings
from tests.builders import STUDY

UNREACHABLE = KafkaSettings("127.0.0.1:1", STUDY, "unused")

SDTMIG: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "DM": (
        "Demographics",
        [
            ("STUDYID", "Study Identifier", "Req"),
            ("DOMAIN", "Domain Abbreviation", "Req"),
            ("USUBJID", "Unique Subject Identifier", "Req"),
            ("SUBJID", "Subject Identifier for the Study", "Req"),
            ("RFSTDTC", "Subject Reference Start Date/Time", "Exp"),
            ("RFENDTC", "Subject Reference End Date/Time", "Exp"),
            ("RFXSTDTC", "Date/Time of First Study Treatment", "Exp"),
            ("RFXENDTC", "Date/Time of Last Study Treatment", "Exp"),
            ("RFICDTC", "Date/Time of Informed Consent", "Exp"),
            ("RFPENDTC", "Date/Time of End of Participation", "Exp"),
            ("DTHDTC", "Date/Time of Death", "Exp"),
            ("DTHFL", "Subject Death Flag", "Exp"),
            ("SITEID", "Study Site Identifier", "Req"),
            ("AGE", "Age", "Exp"),
            ("AGEU", "Age Units", "Exp"),
            ("SEX", "Sex", "Req"),
            ("RACE", "Race", "Exp"),
            ("ARMCD", "Planned Arm Code", "Exp"),
            ("ARM", "Description of Planned Arm", "Exp"),
            ("ACTARMCD", "Actual Arm Code", "Exp"),
            ("ACTARM", "Description of Actual Arm", "Exp"),
            ("ARMNRS", "Reason Arm and/or Actual Arm is Null", "Exp"),
            ("ACTARMUD", "Description of Unplanned Actual Arm", "Exp"),
            ("COUNTRY", "Country", "Req"),
            ("DMDTC", "Date/Time of Collection", "Perm"),
            ("DMDY", "Study Day of Collection", "Perm"),
        ],
    ),
    "DV": (
        "Protocol Deviations",
        [
            ("STUDYID", "Study Identifier", "Req"),
            ("DOMAIN", "Domain Abbreviation", "Req"),
            ("USUBJID", "Unique Subject Identifier", "Req"),
            ("DVSEQ", "Sequence Number", "Req"),
            ("DVREFID", "Reference ID", "Perm"),
            ("DVSPID", "Sponsor-Defined Identifier", "Perm"),
            ("DVTERM", "Protocol Deviation Term", "Req"),
            ("DVDECOD", "Protocol Deviation Coded Term", "Perm"),
            ("DVCAT", "Category for Protocol Deviation", "Perm"),
            ("DVSCAT", "Subcategory for Protocol Deviation", "Perm"),
            ("EPOCH", "Epoch", "Perm"),
            ("DVSTDTC", "Start Date/Time of Deviation", "Perm"),
            ("DVSTDY", "Study Day of Start of Deviation", "Perm"),
        ],
    ),
    "SUPPDV": (
        "Supplemental Qualifiers for DV",
        [
            ("STUDYID", "Study Identifier", "Req"),
            ("RDOMAIN", "Related Domain Abbreviation", "Req"),
            ("USUBJID", "Unique Subject Identifier", "Req"),
            ("IDVAR", "Identifying Variable", "Exp"),
            ("IDVARVAL", "Identifying Variable Value", "Exp"),
            ("QNAM", "Qualifier Variable Name", "Req"),
            ("QLABEL", "Qualifier Variable Label", "Req"),
            ("QVAL", "Data Value", "Req"),
            ("QORIG", "Origin", "Req"),
            ("QEVAL", "Evaluator", "Exp"),
        ],
    ),
}
"""Per dataset: its SDTMIG label, then its variables in SDTMIG order with label and core."""

KEYS = {
    "DM": ["STUDYID", "USUBJID"],
    "DV": ["STUDYID", "USUBJID", "DVSEQ"],
    "SUPPDV": ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"],
}

_FRAGMENTS = """
SEQ GRPID REFID SPID LNKID LNKGRP TERM MODIFY LLT LLTCD DECOD PTCD HLT HLTCD HLGT HLGTCD CAT SCAT
PRESP OCCUR STAT REASND BODSYS BDSYCD SOC SOCCD LOC LAT DIR PORTOT PARTY PRTYID SEV SER ACN ACNOTH
ACNDEV REL RELNST PATT OUT SCAN SCONG SDISAB SDTH SHOSP SLIFE SOD SMIE SINTV UNANT RL CONTRT TOXGR
TOX TRT DOSE DOSTXT DOSU DOSFRM DOSFRQ DOSTOT ROUTE LOT ADJ TESTCD TEST ORRES ORRESU STRESC STRESN
STRESU NRIND RESCAT XFN NAM SPEC METHOD BLFL LOBXFL FAST DRVFL EVAL EVALID ACPTFL EPOCH DTC STDTC
ENDTC DY STDY ENDY DUR TPT TPTNUM ELTM TPTREF RFTDTC STRF ENRF EVLINT EVINTX STRTPT STTPT ENRTPT
ENTPT STINT ENINT DETECT DTHREL UPDES
"""
MODEL_QUALIFIERS = _FRAGMENTS.split()
"""SDTM model variable fragments of the general observation classes (``--`` + fragment): a SUPPDV
QNAM must not be ``DV`` + one of them (CORE rule CG0314)."""

EPOCH_TERMS = {"SCREENING", "RUN-IN", "TREATMENT", "FOLLOW-UP", "LONG-TERM FOLLOW-UP", "WASHOUT", "BASELINE"}
EVAL_TERMS = {"", "ADJUDICATION COMMITTEE", "CLINICAL STUDY SPONSOR", "INDEPENDENT ASSESSOR", "INVESTIGATOR"}
ARMNRS_TERMS = {"", "ASSIGNED, NOT TREATED", "NOT ASSIGNED", "SCREEN FAILURE", "UNPLANNED TREATMENT"}
ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?)?$")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The datasets (data, metadata) and the define.xml root of a 200-participant cohort."""
    folder = tmp_path_factory.mktemp("sdtm")
    cohort = folder / "cohort.jsonl"
    assert main(["simulate", "--participants", "200", "--seed", "5", "--out", str(cohort)]) == 0
    err = io.StringIO()
    status = run(str(folder / "dv.xpt"), None, "xpt", str(cohort), UNREACHABLE, stderr=err)
    assert status == 0, err.getvalue()
    files: dict[str, Any] = {name: pyreadstat.read_xport(str(folder / f"{name.lower()}.xpt")) for name in SDTMIG}
    files["define"] = ET.parse(folder / "define.xml").getroot()
    return files


@pytest.mark.parametrize("name", list(SDTMIG))
def test_dataset_name_label_and_xpt_v5(exported: dict[str, Any], name: str) -> None:
    _, meta = exported[name]
    assert meta.table_name == name
    assert meta.file_label == SDTMIG[name][0]


@pytest.mark.parametrize("name", list(SDTMIG))
def test_variables_in_sdtmig_order_with_their_labels(exported: dict[str, Any], name: str) -> None:
    data, meta = exported[name]
    expected = SDTMIG[name][1]
    assert list(data.columns) == [v for v, _, _ in expected]
    assert meta.column_names_to_labels == {v: label for v, label, _ in expected}
    assert all(len(v) <= 8 and re.fullmatch(r"[A-Z][A-Z0-9]*", v) for v in data.columns)
    assert all(len(label) <= 40 for label in meta.column_names_to_labels.values())


@pytest.mark.parametrize("name", list(SDTMIG))
def test_required_variables_never_null_and_values_fit(exported: dict[str, Any], name: str) -> None:
    data, _ = exported[name]
    assert len(data) > 0
    for variable, _, core in SDTMIG[name][1]:
        column = data[variable]
        if core == "Req":
            assert not column.isna().any(), variable
            assert not (column.astype(str).str.strip() == "").any(), variable
        if column.dtype == object:
            assert column.map(lambda v: len(v.encode("utf-8")) <= 200).all(), variable


@pytest.mark.parametrize("name", list(SDTMIG))
def test_sorted_by_keys_and_keys_unique(exported: dict[str, Any], name: str) -> None:
    data, _ = exported[name]
    keys = KEYS[name]
    assert data.equals(data.sort_values(keys, kind="stable").reset_index(drop=True)), f"{name} not sorted by {keys}"
    assert not data.duplicated(keys).any()


def test_domain_values(exported: dict[str, Any]) -> None:
    assert set(exported["DM"][0]["DOMAIN"]) == {"DM"}
    assert set(exported["DV"][0]["DOMAIN"]) == {"DV"}
    assert set(exported["SUPPDV"][0]["RDOMAIN"]) == {"DV"}


def test_qnams_are_not_model_variables(exported: dict[str, Any]) -> None:
    supp, _ = exported["SUPPDV"]
    qnams = set(supp["QNAM"])
    assert qnams == {"DVSEVR", "DVREVST"}
    model = {"DV" + fragment for fragment in MODEL_QUALIFIERS}
    assert "DVSEV" in model  # the QNAM CORE flagged before (CG0314)
    assert not qnams & model
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", q) for q in qnams)
    assert all(len(label) <= 40 for label in supp["QLABEL"])
    labels = dict(zip(supp["QNAM"], supp["QLABEL"], strict=True))
    assert labels == {"DVSEVR": "Deviation Severity", "DVREVST": "Review Status"}


def test_controlled_terms(exported: dict[str, Any]) -> None:
    dm, dv, supp = exported["DM"][0], exported["DV"][0], exported["SUPPDV"][0]
    assert set(dv["EPOCH"]) <= EPOCH_TERMS
    assert set(supp["QEVAL"]) <= EVAL_TERMS
    assert set(supp.loc[supp["QNAM"] == "DVSEVR", "QEVAL"]) == {"CLINICAL STUDY SPONSOR"}
    assert set(supp.loc[supp["QNAM"] == "DVSEVR", "QVAL"]) <= {"IMPORTANT", "MINOR"}
    assert set(supp["QORIG"]) <= {"Assigned", "Derived", "Collected", "Protocol", "Predecessor"}
    assert set(dm["SEX"]) <= {"F", "M", "U"}
    assert set(dm["AGEU"]) <= {"YEARS", ""}
    assert set(dm["ARMNRS"]) <= ARMNRS_TERMS
    assert set(dm["COUNTRY"]) == {"CHN"}


def test_every_dv_subject_is_in_dm_and_every_qualifier_has_its_parent(exported: dict[str, Any]) -> None:
    dm, dv, supp = exported["DM"][0], exported["DV"][0], exported["SUPPDV"][0]
    assert set(dv["USUBJID"]) <= set(dm["USUBJID"])
    parents = {(u, str(int(s))) for u, s in zip(dv["USUBJID"], dv["DVSEQ"], strict=True)}
    assert set(zip(supp["USUBJID"], supp["IDVARVAL"], strict=True)) == parents
    assert set(supp["IDVAR"]) == {"DVSEQ"}


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def _sdtm_day(value: str, reference: str) -> int:
    days = (_date(value) - _date(reference)).days
    return days + 1 if days >= 0 else days


def test_study_days_follow_sdtmig(exported: dict[str, Any]) -> None:
    dm, dv = exported["DM"][0], exported["DV"][0]
    reference = dict(zip(dm["USUBJID"], dm["RFSTDTC"], strict=True))
    assert (dv["DVSTDY"].dropna() != 0).all()
    assert (dm["DMDY"].dropna() != 0).all()
    for row in dv.to_dict("records"):
        start = reference[row["USUBJID"]]
        assert ISO8601.fullmatch(row["DVSTDTC"]), row["DVSTDTC"]
        if start:
            assert row["DVSTDY"] == _sdtm_day(row["DVSTDTC"], start), row
        else:
            assert pd.isna(row["DVSTDY"]), row
    assert dv["DVSTDY"].notna().sum() > 0
    assert (dv["DVSTDY"] < 0).any()
    assert (dv["DVSTDY"] > 0).any()
    for row in dm.to_dict("records"):
        if row["RFSTDTC"] and row["DMDTC"]:
            assert row["DMDY"] == _sdtm_day(row["DMDTC"], row["RFSTDTC"])


def test_dm_dates_and_arms_agree(exported: dict[str, Any]) -> None:
    dm, _ = exported["DM"]
    for row in dm.to_dict("records"):
        for variable in ("RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC", "RFPENDTC", "DMDTC"):
            assert not row[variable] or ISO8601.fullmatch(row[variable]), (variable, row[variable])
        assert row["RFSTDTC"] == row["RFXSTDTC"]  # the reference start is the first exposure
        if row["RFSTDTC"]:
            assert row["RFICDTC"]
            assert row["RFICDTC"] <= row["RFSTDTC"] <= row["RFENDTC"]
        # SDTMIG 3.4: ARMNRS is given exactly when the planned or the actual arm is null.
        assert bool(row["ARMNRS"]) == (not row["ARMCD"] or not row["ACTARMCD"]), row["USUBJID"]
        assert bool(row["ACTARMCD"]) == bool(row["RFXSTDTC"])  # actual arm: treated
        assert (row["ACTARMCD"], row["ACTARM"]) in {("", ""), (row["ARMCD"], row["ARM"])}
        assert pd.isna(row["AGE"]) == (row["AGEU"] == "")
        assert pd.isna(row["AGE"]) or (row["AGE"] == int(row["AGE"]) and row["AGE"] >= 0)
    assert set(dm["ARMCD"]) - {""} == {"LOWDOSE", "HIGHDOSE"}
    assert "SCREEN FAILURE" in set(dm["ARMNRS"])


def test_dv_before_consent_only_for_consent_deviations(exported: dict[str, Any]) -> None:
    """CORE rule CG0075 flags a deviation dated before RFICDTC. Those are the deviations *about*
    consent (a procedure before it, consent not obtained): true dates, explained to a reviewer."""
    dm, dv = exported["DM"][0], exported["DV"][0]
    consent = dict(zip(dm["USUBJID"], dm["RFICDTC"], strict=True))
    early = [r for r in dv.to_dict("records") if consent[r["USUBJID"]] and r["DVSTDTC"] < consent[r["USUBJID"]]]
    assert early
    assert {r["DVCAT"] for r in early} == {"INFORMED CONSENT"}


def test_define_describes_the_files_as_written(exported: dict[str, Any]) -> None:
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
    root = exported["define"]
    items = {i.get("OID"): i for i in root.iter("{http://www.cdisc.org/ns/odm/v1.3}ItemDef")}
    groups = list(root.iter("{http://www.cdisc.org/ns/odm/v1.3}ItemGroupDef"))
    assert [g.get("Name") for g in groups] == ["DM", "DV", "SUPPDV"]
    for group in groups:
        name = group.get("Name")
        data, meta = exported[name]
        assert group.find("odm:Description/odm:TranslatedText", ns).text == meta.file_label
        refs = group.findall("odm:ItemRef", ns)
        assert [items[r.get("ItemOID")].get("Name") for r in refs] == list(data.columns)
        keyed = sorted(
            (int(r.get("KeySequence")), items[r.get("ItemOID")].get("Name")) for r in refs if r.get("KeySequence")
        )
        assert [n for _, n in keyed] == KEYS[name]
        for ref in refs:
            item = items[ref.get("ItemOID")]
            variable = item.get("Name")
            assert ref.get("Mandatory") == (
                "Yes" if dict((v, c) for v, _, c in SDTMIG[name][1])[variable] == "Req" else "No"
            )
            assert item.find("odm:Description/odm:TranslatedText", ns).text == meta.column_names_to_labels[variable]
            assert int(item.get("Length")) == meta.variable_storage_width[variable], (name, variable)
            assert item.get("DataType") == ("integer" if data[variable].dtype != object else item.get("DataType"))
            assert item.find("def:Origin", ns).get("Type") in {"Collected", "Derived", "Assigned", "Protocol"}
        leaf = group.find("def:leaf", ns)
        assert leaf is not None
        assert leaf.get("{http://www.w3.org/1999/xlink}href") == f"{name.lower()}.xpt"
    country = items["IT.DM.COUNTRY"].find("def:Origin/odm:Description/odm:TranslatedText", ns)
    assert country is not None
    assert "NCT06904729" in (country.text or "")
