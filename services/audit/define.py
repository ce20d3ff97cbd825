"""define.xml-style metadata of the exported datasets (CDISC Define-XML 2.1 elements, ODM 1.3.2).

For each dataset (DM, DV, SUPPDV): an ``ItemGroupDef`` with its label, class, structure, keys and
file; for each variable an ``ItemDef`` with its label, data type, length (as written: the longest
value in bytes for text, 8 for numbers), origin, and the codelist its values come from. Built from
``services.audit.sdtm_spec``, the same table the writers use. It is metadata a reviewer's tools can
read, not a complete submission define.xml (no value-level metadata, no stylesheet, no methods).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from services.audit.sdtm_spec import Dataset, Variable
from services.audit.sdtm_study import SdtmStudy

ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
ET.register_namespace("", ODM)
ET.register_namespace("def", DEF)
ET.register_namespace("xlink", XLINK)

CODELISTS: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    "EPOCH": ("Epoch", "C99079", ("SCREENING", "TREATMENT", "FOLLOW-UP")),
    "QEVAL": ("Evaluator", "C78735", ("CLINICAL STUDY SPONSOR",)),
    "SEX": ("Sex", "C66731", ("F", "M", "U")),
    "AGEU": ("Age Unit", "C66781", ("YEARS",)),
    "ARMNRS": (
        "Arm Null Reason",
        "C142179",
        ("ASSIGNED, NOT TREATED", "NOT ASSIGNED", "SCREEN FAILURE", "UNPLANNED TREATMENT"),
    ),
}
"""Variable → codelist name, its NCI code, and the terms this export uses."""

SAS_TYPE = {"text": "text", "datetime": "datetime", "integer": "integer"}


def length(variable: Variable, values: Sequence[Any]) -> int:
    """The variable's length as written to XPT: 8 for numbers, else the longest value in bytes (at least 1)."""
    if variable.numeric:
        return 8
    return max([1, *(len(str(v).encode("utf-8")) for v in values if v is not None)])


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _description(parent: ET.Element, text: str) -> None:
    description = ET.SubElement(parent, _q(ODM, "Description"))
    ET.SubElement(
        description, _q(ODM, "TranslatedText"), {_q("http://www.w3.org/XML/1998/namespace", "lang"): "en"}
    ).text = text


def define_xml(
    study: SdtmStudy,
    title: str,
    tables: Sequence[tuple[Dataset, Mapping[str, Sequence[Any]], str]],
    created: dt.datetime,
) -> bytes:
    """The define.xml document of the datasets.

    Args:
        study: the study (its id names the study, its country and reference rule are described).
        title: the protocol's title.
        tables: each dataset with its columns as written (variable → values) and its file name.
        created: the document's creation time (the export's).

    Returns:
        The XML document, UTF-8, with its declaration.
    """
    odm = ET.Element(
        _q(ODM, "ODM"),
        {
            "FileType": "Snapshot",
            "FileOID": f"TrialGuard.{study.study_id}.define",
            "ODMVersion": "1.3.2",
            "CreationDateTime": created.isoformat(timespec="seconds"),
            "Originator": "TrialGuard",
            _q(DEF, "Context"): "Submission",
        },
    )
    study_el = ET.SubElement(odm, _q(ODM, "Study"), {"OID": f"ST.{study.study_id}"})
    globals_el = ET.SubElement(study_el, _q(ODM, "GlobalVariables"))
    ET.SubElement(globals_el, _q(ODM, "StudyName")).text = study.study_id
    ET.SubElement(globals_el, _q(ODM, "StudyDescription")).text = title
    ET.SubElement(globals_el, _q(ODM, "ProtocolName")).text = study.study_id
    mdv = ET.SubElement(
        study_el,
        _q(ODM, "MetaDataVersion"),
        {
            "OID": "MDV.TrialGuard.SDTMIG.3.4",
            "Name": "TrialGuard SDTM export",
            _q(DEF, "DefineVersion"): "2.1.0",
        },
    )
    standards = ET.SubElement(mdv, _q(DEF, "Standards"))
    ET.SubElement(
        standards,
        _q(DEF, "Standard"),
        {"OID": "STD.SDTMIG.3.4", "Name": "SDTMIG", "Type": "IG", "Version": "3.4", "Status": "Final"},
    )
    items: dict[str, tuple[Variable, int, str]] = {}
    for dataset, table, file_name in tables:
        group = ET.SubElement(
            mdv,
            _q(ODM, "ItemGroupDef"),
            {
                "OID": f"IG.{dataset.name}",
                "Name": dataset.name,
                "SASDatasetName": dataset.name,
                "Repeating": "No" if dataset.name == "DM" else "Yes",
                "IsReferenceData": "No",
                "Purpose": "Tabulation",
                "Domain": dataset.name.removeprefix("SUPP") if dataset.name.startswith("SUPP") else dataset.name,
                _q(DEF, "Structure"): dataset.structure,
                _q(DEF, "StandardOID"): "STD.SDTMIG.3.4",
                _q(DEF, "ArchiveLocationID"): f"LF.{dataset.name}",
            },
        )
        _description(group, dataset.label)
        for order, variable in enumerate(dataset.variables, 1):
            oid = f"IT.{dataset.name}.{variable.name}"
            attributes = {
                "ItemOID": oid,
                "OrderNumber": str(order),
                "Mandatory": "Yes" if variable.core == "Req" else "No",
            }
            if variable.name in dataset.keys:
                attributes["KeySequence"] = str(dataset.keys.index(variable.name) + 1)
            ET.SubElement(group, _q(ODM, "ItemRef"), attributes)
            items[oid] = (variable, length(variable, table.get(variable.name, [])), dataset.name)
        ET.SubElement(group, _q(DEF, "Class"), {"Name": dataset.sdtm_class})
        leaf = ET.SubElement(group, _q(DEF, "leaf"), {"ID": f"LF.{dataset.name}", _q(XLINK, "href"): file_name})
        ET.SubElement(leaf, _q(DEF, "title")).text = file_name
    for oid, (variable, size, _dataset) in items.items():
        item = ET.SubElement(
            mdv,
            _q(ODM, "ItemDef"),
            {
                "OID": oid,
                "Name": variable.name,
                "DataType": SAS_TYPE[variable.data_type],
                "Length": str(size),
                "SASFieldName": variable.name,
            },
        )
        _description(item, variable.label)
        if variable.name in CODELISTS:
            ET.SubElement(item, _q(ODM, "CodeListRef"), {"CodeListOID": f"CL.{variable.name}"})
        origin = ET.SubElement(item, _q(DEF, "Origin"), {"Type": variable.origin})
        comment = variable.comment
        if variable.name == "COUNTRY":
            comment = study.country_source
        elif variable.name == "RFSTDTC":
            comment = study.reference_start_rule
        if comment:
            _description(origin, comment)
    for name, (label, code, terms) in CODELISTS.items():
        codelist = ET.SubElement(mdv, _q(ODM, "CodeList"), {"OID": f"CL.{name}", "Name": label, "DataType": "text"})
        for term in terms:
            ET.SubElement(codelist, _q(ODM, "EnumeratedItem"), {"CodedValue": term})
        ET.SubElement(codelist, _q(ODM, "Alias"), {"Context": "nci:ExtCodeID", "Name": code})
    ET.indent(odm)
    body: bytes = ET.tostring(odm, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
