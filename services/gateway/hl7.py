"""HL7 v2.5.1 ORU^R01 in, contract-v1 ``ScreeningLabResulted`` events and an ACK out. Pure: no
I/O; the clock only for the ACK's MSH-7 (and only when the caller gives no time).

hl7apy parses at the TOLERANT validation level. Strict validation rejects a message for any
deviation from the v2.5.1 structure, including fields this gateway never reads (vendor quirks,
Z-segments, cardinality of optional fields), stops at the first problem and names it in words
an ACK cannot carry. Instead every field the gateway does read is checked here, and each
problem becomes an ``ERR`` segment naming segment, occurrence and field.

A message is all or nothing, like a FHIR Bundle: one bad OBX and nothing is published (AE).
A timestamp without a UTC offset is rejected: it is in the sender's local time, which the
gateway cannot know for certain, and guessing a site's zone can move a result across a day
boundary of the screening windows. The contract's timestamps carry an offset for the same reason.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from contracts import ContractError, parse_event
from contracts import units as unit_table
from contracts.participant_events import LabResultCorrected, LabResultRetracted, ScreeningLabResulted
from services.gateway.fhir import GATEWAY_NAMESPACE, SourceInfo
from services.gateway.fhir_values import qualitative_result
from services.gateway.hl7_ack import ENCODING, Hl7Error, _first, _msh_fields, ack

MAX_MESSAGE_CHARS = 1_000_000
HELD = frozenset({"P", "I", "R", "S"})  # preliminary, in process, not verified, partial
CORRECTION = "C"
RETRACTIONS = frozenset({"D", "W"})  # deleted, posted to the wrong patient: the final result is withdrawn
# HL7 table 0357 (message error condition codes) used in ERR-3.
_SNOMED = {"10828004": "positive", "260385009": "negative", "42425007": "equivocal"}
_SNOMED |= {"260373001": "positive", "260415000": "negative"}
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_TS = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2}(?:\.\d{1,4})?)?([+-]\d{4})?$")
_RANGE = re.compile(r"^\s*(?:(-?\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)|(<=?|>=?)\s*(\d+(?:\.\d+)?))\s*$")


@dataclass(frozen=True)
class Hl7Result:
    """The events to publish (none when there is an error), held results, and errors."""

    events: tuple[ScreeningLabResulted | LabResultCorrected | LabResultRetracted, ...] = ()
    held: tuple[Hl7Error, ...] = ()
    errors: tuple[Hl7Error, ...] = ()

    @property
    def ack_code(self) -> Literal["AA", "AE", "AR"]:
        """MSA-1: AR when the message is refused, AE when its content is wrong, else AA."""
        if any(e.reject for e in self.errors):
            return "AR"
        return "AE" if self.errors else "AA"

    def ack(self, message: str, *, now: dt.datetime | None = None) -> str:
        """The ACK to answer ``message`` with: its errors, or the held results as warnings."""
        return ack(message, self.ack_code, [*self.errors, *self.held], now=now)


def sending_application(message: str) -> tuple[str, str]:
    """MSH-3 and MSH-4 (namespace ids): who sent the message, to look its source up.

    Raises:
        ValueError: the message does not start with an MSH segment.
    """
    msh = _msh_fields(message)
    if msh is None:
        raise ValueError("not an HL7 v2 message: it does not start with MSH|^~\\&")
    return _first(msh.get(3, "")), _first(msh.get(4, ""))


def oru_to_events(
    message: str, source: SourceInfo, study_id: str, *, assigning_authority: str | None = None
) -> Hl7Result:
    """Map an ORU^R01 message to contract events.

    Args:
        message: the message, segments separated by CR (LF and CRLF are accepted too).
        source: the source that sent it (site, name for ``source.system`` and event ids).
        study_id: the study the events belong to.
        assigning_authority: the PID-3 identifier whose CX-4 has this namespace id is the
            participant id; None takes the first identifier of PID-3.

    Returns:
        Events (none if any error), held results (as warnings) and errors, each naming its
        segment, occurrence and field.
    """
    text = message.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    refused = _refuse(text)
    if refused is not None:
        return Hl7Result(errors=(refused,))
    try:
        parsed = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except (HL7apyException, ValueError, TypeError, KeyError, IndexError) as e:
        return Hl7Result(errors=(Hl7Error("MSH", 1, None, f"cannot parse: {type(e).__name__}", 100, reject=True),))
    mapper = _Mapper(source, study_id, assigning_authority)
    for segment in _segments(parsed):
        mapper.visit(segment.name, segment)
    return mapper.result()


class _Mapper:
    """Walks the segments in order: a PID sets the participant, an OBR the order, an OBX maps."""

    def __init__(self, source: SourceInfo, study_id: str, authority: str | None) -> None:
        self.source, self.study_id, self.authority = source, study_id, authority
        self.counts: dict[str, int] = {}
        self.events: list[ScreeningLabResulted | LabResultCorrected | LabResultRetracted] = []
        self.held: list[Hl7Error] = []
        self.errors: list[Hl7Error] = []
        self.recorded_at: str | None = None
        self.control_id = ""
        self.participant: str | None = None
        self.order: tuple[str, str | None] | None = None  # (key for event ids, OBR-7)

    def result(self) -> Hl7Result:
        if not self.errors and not self.events and not self.held:
            self.errors.append(Hl7Error("OBX", 1, None, "no OBX segment: no result in the message", 100))
        if self.errors:
            return Hl7Result(held=tuple(self.held), errors=tuple(self.errors))
        return Hl7Result(events=tuple(self.events), held=tuple(self.held))

    def error(self, segment: str, field: int | None, message: str, code: int = 102) -> None:
        self.errors.append(Hl7Error(segment, self.counts.get(segment, 1), field, message, code))

    def visit(self, name: str, segment: Any) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        if name == "MSH":
            self.control_id = segment.msh_10.to_er7()
            self.recorded_at = self.timestamp("MSH", 7, segment.msh_7.to_er7())
        elif name == "PID":
            self.participant = self.pid(segment)
        elif name == "OBR":
            filler = _first(segment.obr_3.to_er7())
            key = f"filler|{filler}" if filler else f"control|{self.control_id}|obr|{self.counts['OBR']}"
            self.order = (key, segment.obr_7.to_er7() or None)
        elif name == "OBX":
            self.obx(segment)

    def pid(self, segment: Any) -> str | None:
        for repetition in segment.pid_3:
            cx = repetition.to_er7().split("^")
            authority = _first(cx[3]) if len(cx) > 3 else ""
            if cx[0] and (self.authority is None or authority == self.authority):
                return str(cx[0])
        wanted = f" assigned by {self.authority}" if self.authority else ""
        self.error("PID", 3, f"no patient identifier{wanted}: the participant id", 101)
        return None

    def timestamp(self, segment: str, field: int, value: str) -> str | None:
        match = _TS.match(value)
        if match is None or match.group(7) is None:
            why = "missing" if not value else "no UTC offset" if match else "not an HL7 TS (YYYYMMDDHHMM[SS][+/-ZZZZ])"
            self.error(
                segment, field, f"timestamp {why}: a time with its UTC offset is needed", 101 if not value else 102
            )
            return None
        year, month, day, hour, minute, seconds, offset = match.groups()
        second = float(seconds or 0)
        zone = dt.timezone(
            dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:])) * (-1 if offset[0] == "-" else 1)
        )
        try:
            when = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone)
        except ValueError:
            self.error(segment, field, f"timestamp {value!r} is not a date and time", 102)
            return None
        return (when + dt.timedelta(microseconds=round(second % 1 * 1e6))).isoformat()

    def obx(self, obx: Any) -> None:
        before = len(self.errors)
        set_id, status = obx.obx_1.to_er7() or str(self.counts["OBX"]), obx.obx_11.to_er7().strip()
        if status in HELD:
            self.held.append(
                Hl7Error("OBX", self.counts["OBX"], 11, f"result status {status}: held, not published", 0, "W")
            )
            return
        if status in RETRACTIONS:
            self.retraction(set_id, status)
            return
        if status not in ("F", CORRECTION):
            self.error("OBX", 11, f"result status {status or 'missing'}: only F (final) is published", 103)
            return
        loinc = self.loinc(obx.obx_3.to_er7())
        value = self.value(obx.obx_2.to_er7(), obx.obx_5.to_er7())
        unit = self.unit(obx.obx_6.to_er7())
        uln, lln = self.range(obx.obx_7.to_er7())
        if loinc is not None and isinstance(value, float):
            try:
                unit_table.check_unit(loinc, value, unit)
            except unit_table.UnknownUnitError as e:
                self.error("OBX", 6, str(e), 103)
        occurred = obx.obx_14.to_er7()
        where = ("OBX", 14) if occurred or self.order is None else ("OBR", 7)
        occurred_at = self.timestamp(*where, occurred or (self.order[1] if self.order else None) or "")
        if self.participant is None or self.order is None:
            missing = "PID" if self.participant is None else "OBR"
            self.errors.append(Hl7Error(missing, 1, None, f"an OBX needs a {missing} before it", 100))
        if len(self.errors) > before or self.order is None:
            return
        payload: dict[str, Any] = {"loinc": loinc, "value": value}
        payload |= {k: v for k, v in (("unit", unit), ("uln", uln), ("lln", lln)) if v is not None}
        key, event_type = f"hl7|{self.source.name}|{self.order[0]}|obx|{set_id}|{status}", "ScreeningLabResulted"
        if status == CORRECTION:
            # OBX-11 C replaces the final (F) result of the same order and OBX; its own id depends
            # on the new value, so a second, different correction is an event of its own.
            event_type = "LabResultCorrected"
            payload = {k: v for k, v in payload.items() if k in ("value", "unit", "uln")}
            payload["corrected_event_id"] = self.original_id(set_id)
            key += f"|{json.dumps(payload, sort_keys=True)}"
        event = {
            "event_id": str(uuid.uuid5(GATEWAY_NAMESPACE, key)),
            "event_type": event_type,
            "schema_version": 1,
            "study_id": self.study_id,
            "site_id": self.source.site,
            "participant_id": self.participant,
            "occurred_at": occurred_at,
            "recorded_at": self.recorded_at,
            "source": {"system": self.source.name},
            "payload": payload,
        }
        try:
            parsed = parse_event(json.dumps(event))
        except ContractError as e:
            fields = {"payload.value": 5, "payload.unit": 6, "payload.uln": 7, "payload.lln": 7, "payload.loinc": 3}
            for v in e.violations:
                if v.field == "participant_id":
                    self.errors.append(Hl7Error("PID", self.counts.get("PID", 1), 3, str(v)))
                elif v.field == "recorded_at":
                    self.errors.append(Hl7Error("MSH", 1, 7, str(v)))
                elif v.field == "occurred_at":
                    self.error(*where, str(v))
                else:
                    self.error("OBX", fields.get(v.field), str(v))
            return
        assert isinstance(parsed, ScreeningLabResulted | LabResultCorrected)
        self.events.append(parsed)

    def original_id(self, set_id: str) -> str:
        """The event id the gateway gave the final (F) result of this order's OBX ``set_id``."""
        assert self.order is not None
        return str(uuid.uuid5(GATEWAY_NAMESPACE, f"hl7|{self.source.name}|{self.order[0]}|obx|{set_id}|F"))

    def retraction(self, set_id: str, status: str) -> None:
        """OBX-11 D or W: the final result of this order's OBX is withdrawn."""
        if self.participant is None or self.order is None:
            missing = "PID" if self.participant is None else "OBR"
            self.errors.append(Hl7Error(missing, 1, None, f"an OBX needs a {missing} before it", 100))
            return
        occurred_at = self.timestamp("OBR", 7, self.order[1] or "") or self.recorded_at
        event = {
            "event_id": str(
                uuid.uuid5(GATEWAY_NAMESPACE, f"hl7|{self.source.name}|{self.order[0]}|obx|{set_id}|{status}")
            ),
            "event_type": "LabResultRetracted",
            "schema_version": 1,
            "study_id": self.study_id,
            "site_id": self.source.site,
            "participant_id": self.participant,
            "occurred_at": occurred_at,
            "recorded_at": self.recorded_at,
            "source": {"system": self.source.name},
            "payload": {"retracted_event_id": self.original_id(set_id)},
        }
        try:
            parsed = parse_event(json.dumps(event))
        except ContractError as e:
            for v in e.violations:
                self.error("OBX", 11, str(v))
            return
        assert isinstance(parsed, LabResultRetracted)
        self.events.append(parsed)

    def loinc(self, field: str) -> str | None:
        ce = field.split("^") + [""] * 6
        code = ce[0] if ce[2] == "LN" else ce[3] if ce[5] == "LN" else None
        if not code:
            self.error("OBX", 3, "no observation identifier of coding system LN (LOINC)", 103)
            return None
        if unit_table.analyte_for(code) is None:
            self.error("OBX", 3, f"LOINC {code} is not a screening lab of the study", 103)
            return None
        return code

    def value(self, kind: str, field: str) -> float | str | None:
        parts = field.split("^")
        if kind == "NM" and _NUMBER.match(field.strip()):
            return float(field)
        if kind in ("ST", "TX", "FT") and (result := qualitative_result(field)) is not None:
            return result
        if kind in ("CE", "CWE"):
            ce = parts + [""] * 3
            coded = _SNOMED.get(ce[0]) if ce[2] in ("SCT", "SNM") else None
            if (result := coded or qualitative_result(ce[1])) is not None:
                return result
        if kind == "SN":
            sn = parts + [""] * 4
            if not sn[0] and sn[1] == "1" and sn[2] == ":" and sn[3].isdigit():
                return f"1:{int(sn[3])}"
            if not sn[0] and not sn[2] and _NUMBER.match(sn[1]):
                return float(sn[1])
        if kind not in ("NM", "ST", "TX", "FT", "CE", "CWE", "SN"):
            self.error("OBX", 2, f"value type {kind or 'missing'}: expected NM, SN, ST or CE", 103)
        else:
            what = "a number" if kind == "NM" else "positive, negative, equivocal, a number or a titre 1:N"
            self.error("OBX", 5, f"{field[:40]!r} is not {what}")
        return None

    def unit(self, field: str) -> str | None:
        ce = field.split("^") + [""] * 3
        if ce[2] and ce[2] != "UCUM":
            self.error("OBX", 6, f"units of coding system {ce[2]!r}: UCUM is expected", 103)
        return ce[0] or None

    def range(self, field: str) -> tuple[float | None, float | None]:
        if not field:
            return None, None
        match = _RANGE.match(field)
        if match is None:
            self.error("OBX", 7, f"reference range {field[:40]!r}: expected low-high, <high or >low")
            return None, None
        low, high, comparator, bound = match.groups()
        if comparator is None:
            return float(high), float(low)
        return (float(bound), None) if comparator.startswith("<") else (None, float(bound))


def _refuse(text: str) -> Hl7Error | None:
    """Checks before parsing: size, MSH, encoding characters, message type, version."""
    msh = _msh_fields(text)
    if len(text) > MAX_MESSAGE_CHARS:
        return Hl7Error("MSH", 1, None, f"message longer than {MAX_MESSAGE_CHARS:,} characters", 100, reject=True)
    if msh is None or msh.get(2) != ENCODING:
        return Hl7Error("MSH", 1, 2, "not an HL7 v2 message: expected MSH|^~\\&", 100, reject=True)
    kind = msh.get(9, "").split("^")
    if kind[:2] != ["ORU", "R01"]:
        return Hl7Error("MSH", 1, 9, f"message type {'^'.join(kind[:2])!r}: only ORU^R01", 200, reject=True)
    if msh.get(12, "").split("^")[0] != "2.5.1":
        return Hl7Error("MSH", 1, 12, f"version {msh.get(12, '')[:10]!r}: only 2.5.1", 203, reject=True)
    return None


def _segments(node: Any) -> list[Any]:
    """Every segment of a parsed message in order, whatever groups hl7apy found."""
    found = []
    for child in node.children:
        if child.classname == "Segment":
            found.append(child)
        else:
            found += _segments(child)
    return found
