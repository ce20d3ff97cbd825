"""HL7 v2 ORU^R01 (v2.2 to v2.8) in, contract-v1 lab events and an ACK out. Pure: no I/O; the
clock only for the receipt time and the ACK's MSH-7 (when the caller gives none).

hl7apy parses at the TOLERANT validation level. Strict validation rejects a message for any
deviation from the version's structure, including fields this gateway never reads (vendor quirks,
Z-segments, NTE comments, cardinality of optional fields), stops at the first problem and names
it in words an ACK cannot carry. Instead every field the gateway does read is checked here, and
each problem becomes an ``ERR`` segment naming segment, occurrence and field.

A message may carry results the study does not use (every complete blood count has platelets and
MCV): they are left out and acknowledged as not used (``ERR`` severity I), unless the source is
strict, which refuses the message. What the study does use is all or nothing, like a FHIR Bundle:
one bad OBX of a study analyte and nothing is published (AE).

Times without a UTC offset are read in the source's registered time zone
(``services.gateway.local_time``); without one they are refused. ``recorded_at`` is OBX-19 (the
analysis time), else MSH-7, else the receipt time, which the event's ``source.recorded_at_from``
then says.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from hl7apy import SUPPORTED_LIBRARIES
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from contracts import ContractError, parse_event
from contracts import units as unit_table
from contracts.participant_events import LabResultCorrected, LabResultRetracted, ScreeningLabResulted
from services.gateway.fhir import GATEWAY_NAMESPACE, SourceInfo
from services.gateway.hl7_ack import Hl7Error, _first, _msh_fields, ack
from services.gateway.hl7_values import FieldError, components, obx_unit, obx_value, readable, reference_range
from services.gateway.hl7_values import timestamp as read_time
from services.gateway.hl7_wire import check_encoding_characters

MAX_MESSAGE_CHARS = 1_000_000
HELD = frozenset({"P", "I", "R", "S"})  # preliminary, in process, not verified, partial
CORRECTION = "C"
RETRACTIONS = frozenset({"D", "W"})  # deleted, posted to the wrong patient: the final result is withdrawn
VERSIONS = ("2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")
"""MSH-12 versions read. ORU^R01's PID, OBR and OBX keep the positions read here in all of them;
a version hl7apy has no tables for (2.7.1) is parsed with those of the version before it."""
NOT_USED = 0  # ERR-3 code of an acknowledged, not published result: "Message accepted"
LabEvent = ScreeningLabResulted | LabResultCorrected | LabResultRetracted


@dataclass(frozen=True)
class Hl7Result:
    """The events to publish (none when there is an error), held and not-used results, errors."""

    events: tuple[LabEvent, ...] = ()
    held: tuple[Hl7Error, ...] = ()
    errors: tuple[Hl7Error, ...] = ()
    not_used: tuple[Hl7Error, ...] = ()
    notes: tuple[Hl7Error, ...] = ()

    @property
    def ack_code(self) -> Literal["AA", "AE", "AR"]:
        """MSA-1: AR when the message is refused, AE when its content is wrong, else AA."""
        if any(e.reject for e in self.errors):
            return "AR"
        return "AE" if self.errors else "AA"

    def ack(self, message: str, *, now: dt.datetime | None = None) -> str:
        """The ACK to answer ``message`` with: its errors, then held results (warnings), then
        results not used by the study and notes (information)."""
        return ack(message, self.ack_code, [*self.errors, *self.held, *self.not_used, *self.notes], now=now)


def sending_application(message: str) -> tuple[str, str]:
    """MSH-3 and MSH-4 (namespace ids): who sent the message, to look its source up.

    Raises:
        ValueError: the message does not start with an MSH segment.
    """
    msh = _msh_fields(message)
    if msh is None:
        raise ValueError("not an HL7 v2 message: it does not start with an MSH segment")
    return _first(msh.get(3, "")), _first(msh.get(4, ""))


def oru_to_events(
    message: str,
    source: SourceInfo,
    study_id: str,
    *,
    assigning_authority: str | None = None,
    time_zone: str | None = None,
    strict: bool = False,
    received_at: dt.datetime | None = None,
) -> Hl7Result:
    """Map an ORU^R01 message to contract events.

    Args:
        message: one message (not a batch: see ``hl7_wire.split``), segments separated by CR
            (LF and CRLF are accepted too).
        source: the source that sent it (site, name for ``source.system`` and event ids).
        study_id: the study the events belong to.
        assigning_authority: the PID-3 identifier whose CX-4 has this namespace id is the
            participant id; None takes the first identifier of PID-3.
        time_zone: the source's IANA time zone, for times without a UTC offset.
        strict: refuse the message when it carries a result the study does not use.
        received_at: when the gateway received it (``recorded_at`` when the message has none).

    Returns:
        Events (none if any error), held and not-used results, notes and errors, each naming
        its segment, occurrence and field.
    """
    text = message.lstrip("\ufeff").replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    refused = _refuse(text)
    if refused is not None:
        return Hl7Result(errors=(refused,))
    try:
        parsed = parse_message(_parsable(text), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except (HL7apyException, ValueError, TypeError, KeyError, IndexError) as e:
        return Hl7Result(errors=(Hl7Error("MSH", 1, None, f"cannot parse: {type(e).__name__}", 100, reject=True),))
    received = received_at or dt.datetime.now(dt.UTC)
    mapper = _Mapper(source, study_id, assigning_authority, time_zone, strict, received)
    for segment in _segments(parsed):
        mapper.visit(segment.name, segment.to_er7())
    return mapper.result()


class _Mapper:
    """Walks the segments in order: a PID sets the participant, an OBR the order, an OBX maps."""

    def __init__(
        self,
        source: SourceInfo,
        study_id: str,
        authority: str | None,
        zone: str | None,
        strict: bool,
        received: dt.datetime,
    ) -> None:
        self.source, self.study_id, self.authority = source, study_id, authority
        self.zone, self.strict, self.received = zone, strict, received
        self.counts: dict[str, int] = {}
        self.events: list[LabEvent] = []
        self.held: list[Hl7Error] = []
        self.errors: list[Hl7Error] = []
        self.not_used: list[Hl7Error] = []
        self.notes: list[Hl7Error] = []
        self.keys: set[str] = set()  # event id keys used in this message
        self.msh7 = ""
        self.control_id = ""
        self.participant: str | None = None
        self.order: tuple[str, str] | None = None  # (key for event ids, OBR-7)

    def result(self) -> Hl7Result:
        if not self.errors and not self.events and not self.held and not self.not_used:
            self.errors.append(Hl7Error("OBX", 1, None, "no OBX segment: no result in the message", 100))
        events = () if self.errors else tuple(self.events)
        return Hl7Result(events, tuple(self.held), tuple(self.errors), tuple(self.not_used), tuple(self.notes))

    def error(self, segment: str, field: int | None, message: str, code: int = 102) -> None:
        self.errors.append(Hl7Error(segment, self.counts.get(segment, 1), field, message, code))

    def visit(self, name: str, segment: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        fields = segment.split("|")
        if name == "MSH":
            fields.insert(1, "|")  # MSH-1 is the field separator itself: MSH-n is fields[n]
        fields += [""] * 30
        if name == "MSH":
            self.control_id, self.msh7 = fields[10], fields[7]
        elif name == "PID":
            self.participant = self.pid(fields[3])
        elif name == "OBR":
            filler = _first(fields[3])
            key = f"filler|{filler}" if filler else f"control|{self.control_id}|obr|{self.counts['OBR']}"
            self.order = (key, fields[7])
        elif name == "OBX":
            self.obx(fields)

    def pid(self, field: str) -> str | None:
        for repetition in field.split("~"):
            cx = components(repetition, 4)
            if cx[0] and (self.authority is None or _first(cx[3].replace("&", "^")) == self.authority):
                return str(cx[0])
        wanted = f" assigned by {self.authority}" if self.authority else ""
        self.error("PID", 3, f"no patient identifier{wanted}: the participant id", 101)
        return None

    def time(self, segment: str, field: int, value: str) -> str | None:
        if not value:
            self.error(segment, field, "time missing", 101)
            return None
        try:
            return read_time(value, self.zone).isoformat()
        except ValueError as e:
            self.error(segment, field, f"time {e}")
            return None

    def recorded(self, obx19: str) -> tuple[str | None, bool]:
        """``recorded_at``: OBX-19, else MSH-7, else the receipt time (and True: say so)."""
        if obx19:
            return self.time("OBX", 19, obx19), False
        if self.msh7:
            before = len(self.errors)
            at = self.time("MSH", 7, self.msh7)
            if len(self.errors) > before:  # named at MSH-7, occurrence 1
                self.errors[-1] = Hl7Error("MSH", 1, 7, self.errors[-1].message, self.errors[-1].code)
            return at, False
        return self.received.isoformat(), True

    def used(self, obx: list[str]) -> str | None:
        """The OBX-3 LOINC code when the study uses it; None (noted, or an error when strict) if not."""
        code, words, system, alternate, _, alternate_system = components(obx[3], 6)[:6]
        loinc = code if system == "LN" else alternate if alternate_system == "LN" else ""
        if loinc and unit_table.analyte_for(loinc) is not None:
            return loinc
        what = f"LOINC {loinc}" if loinc else f"{readable(code or words)} (no LOINC code)"
        if self.strict:
            self.error("OBX", 3, f"{what} is not a screening lab of the study, and the source is strict", 103)
        else:
            where = self.counts["OBX"]
            self.not_used.append(Hl7Error("OBX", where, 3, f"{what} is not used by the study: not published", 0, "I"))
        return None

    def obx(self, obx: list[str]) -> None:
        before = len(self.errors)
        loinc = self.used(obx)
        if loinc is None:
            return
        set_id, status = obx[1] or str(self.counts["OBX"]), obx[11].strip()
        if status in HELD:
            self.held.append(
                Hl7Error("OBX", self.counts["OBX"], 11, f"result status {status}: held, not published", 0, "W")
            )
            return
        if status in RETRACTIONS:
            self.retraction(set_id, status)
            return
        if status not in ("F", CORRECTION):
            self.error(
                "OBX", 11, f"result status {readable(status) if status else 'missing'}: only F is published", 103
            )
            return
        payload = self.payload(loinc, obx)
        where = ("OBX", 14) if obx[14] or self.order is None else ("OBR", 7)
        occurred_at = self.time(*where, obx[14] or (self.order[1] if self.order else ""))
        recorded_at, from_receipt = self.recorded(obx[19])
        if self.participant is None or self.order is None:
            missing = "PID" if self.participant is None else "OBR"
            self.errors.append(Hl7Error(missing, 1, None, f"an OBX needs a {missing} before it", 100))
        if len(self.errors) > before or self.order is None or payload is None:
            return
        key, event_type = f"hl7|{self.source.name}|{self.order[0]}|obx|{set_id}|{status}", "ScreeningLabResulted"
        if key in self.keys:  # labs reuse a filler number for several OBRs, each with its OBX 1
            key += f"|obr|{self.counts['OBR']}|{loinc}"
        self.keys.add(key)
        if status == CORRECTION:
            # OBX-11 C replaces the final (F) result of the same order and OBX; its own id depends
            # on the new value, so a second, different correction is an event of its own.
            event_type = "LabResultCorrected"
            payload = {k: v for k, v in payload.items() if k in ("value", "unit", "uln")}
            payload["corrected_event_id"] = self.original_id(set_id)
            key += f"|{json.dumps(payload, sort_keys=True)}"
        event = self.envelope(key, event_type, occurred_at, recorded_at, from_receipt) | {"payload": payload}
        try:
            parsed = parse_event(json.dumps(event))
        except ContractError as e:
            fields = {"payload.value": 5, "payload.unit": 6, "payload.uln": 7, "payload.lln": 7, "payload.loinc": 3}
            fields["payload.comparator"] = 5
            for v in e.violations:
                if v.field == "participant_id":
                    self.errors.append(Hl7Error("PID", self.counts.get("PID", 1), 3, str(v)))
                elif v.field == "recorded_at":
                    self.error(*(("OBX", 19) if obx[19] else ("MSH", 7)), str(v))
                elif v.field == "occurred_at":
                    self.error(*where, str(v))
                else:
                    self.error("OBX", fields.get(v.field), str(v))
            return
        assert isinstance(parsed, ScreeningLabResulted | LabResultCorrected)
        self.events.append(parsed)

    def payload(self, loinc: str, obx: list[str]) -> dict[str, Any] | None:
        """The result's payload, or None with the errors noted."""
        try:
            read = obx_value(obx[2], obx[5])
        except FieldError as e:
            self.error("OBX", e.field, str(e), e.code)
            return None
        unit = obx_unit(obx[6])
        try:
            unit_table.check_value(loinc, read.value)
        except unit_table.ResultKindError as e:
            self.error("OBX", 5, str(e), 102)
            return None
        if isinstance(read.value, float):
            try:
                unit_table.check_unit(loinc, read.value, unit)
            except unit_table.UnknownUnitError as e:
                self.error("OBX", 6, str(e), 103)
                return None
        limits = reference_range(obx[7], unit)
        if limits.note is not None:
            self.notes.append(Hl7Error("OBX", self.counts["OBX"], 7, limits.note, 0, "I"))
        payload: dict[str, Any] = {"loinc": loinc, "value": read.value}
        optional = (("unit", unit), ("uln", limits.uln), ("lln", limits.lln), ("comparator", read.comparator))
        return payload | {k: v for k, v in optional if v is not None}

    def envelope(
        self, key: str, event_type: str, occurred_at: str | None, recorded_at: str | None, from_receipt: bool
    ) -> dict[str, Any]:
        source: dict[str, Any] = {"system": self.source.name}
        if from_receipt:
            source["recorded_at_from"] = "receipt"
        return {
            "event_id": str(uuid.uuid5(GATEWAY_NAMESPACE, key)),
            "event_type": event_type,
            "schema_version": 1,
            "study_id": self.study_id,
            "site_id": self.source.site,
            "participant_id": self.participant,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at,
            "source": source,
        }

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
        recorded_at, from_receipt = self.recorded("")
        occurred_at = self.time("OBR", 7, self.order[1]) or recorded_at
        key = f"hl7|{self.source.name}|{self.order[0]}|obx|{set_id}|{status}"
        event = self.envelope(key, "LabResultRetracted", occurred_at, recorded_at, from_receipt)
        event["payload"] = {"retracted_event_id": self.original_id(set_id)}
        try:
            parsed = parse_event(json.dumps(event))
        except ContractError as e:
            for v in e.violations:
                self.error("OBX", 11, str(v))
            return
        assert isinstance(parsed, LabResultRetracted)
        self.events.append(parsed)


def _refuse(text: str) -> Hl7Error | None:
    """Checks before parsing: size, MSH, encoding characters, message type, version."""
    if len(text) > MAX_MESSAGE_CHARS:
        return Hl7Error("MSH", 1, None, f"message longer than {MAX_MESSAGE_CHARS:,} characters", 100, reject=True)
    msh = _msh_fields(text)
    if msh is None:
        return Hl7Error(
            "MSH", 1, None, "not an HL7 v2 message: it does not start with an MSH segment", 100, reject=True
        )
    if (problem := check_encoding_characters(msh.get(2, ""))) is not None:
        return Hl7Error("MSH", 1, 2, problem, 100, reject=True)
    kind = msh.get(9, "").split("^")
    if kind[:2] != ["ORU", "R01"]:
        named = " ".join(k for k in kind[:2] if k) or "missing"
        return Hl7Error("MSH", 1, 9, f"message type {readable(named)}: only ORU R01 (results)", 200, reject=True)
    version = msh.get(12, "").split("^")[0]
    if version not in VERSIONS:
        read = f"{VERSIONS[0]} to {VERSIONS[-1]}"
        return Hl7Error("MSH", 1, 12, f"version {readable(version, 10)}: versions {read} are read", 203, reject=True)
    return None


def _parsable(text: str) -> str:
    """``text`` as hl7apy reads it: MSH-2 without the truncation character (hl7apy refuses it
    before v2.7, and labs send it with 2.5.1), MSH-12 a version it has tables for (the fields
    read here are the same)."""
    fields = text.split("\r", 1)[0].split("|")
    fields[1] = fields[1][:4]
    version = fields[11].split("^")[0]
    if version not in SUPPORTED_LIBRARIES:
        older = (v for v in SUPPORTED_LIBRARIES if v < version)
        fields[11] = max(older, key=lambda v: tuple(map(int, v.split("."))))
    rest = text.split("\r", 1)[1:]
    return "\r".join(["|".join(fields), *rest])


def _segments(node: Any) -> list[Any]:
    """Every segment of a parsed message in order, whatever groups hl7apy found."""
    found = []
    for child in node.children:
        if child.classname == "Segment":
            found.append(child)
        else:
            found += _segments(child)
    return found
