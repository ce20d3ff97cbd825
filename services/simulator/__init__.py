"""``trialguard simulate``: a synthetic NCT06904729 cohort as contract-v1 JSON lines, with protocol
deviations injected at a chosen rate and a ground-truth label file.

A participant is registered, consents (with a guardian when under 18), brings a kidney biopsy,
screening labs in the units and LOINC codes real laboratories send, SLEDAI-2K, the EULAR/ACR
score, a medical history and ECOG; the investigator confirms eligibility (some are screen
failures and are never enrolled); the enrolled go through leukapheresis, lymphodepletion and one
CAR-T infusion at their arm's dose, report adverse events, and come to the follow-up visits of
the schedule until they complete M24, withdraw, or the data cut-off arrives. A scheduler
publishes a ``ClockTicked`` watermark every week for every active participant. Some relapse.

With probability ``deviation_rate`` a participant gets one deviation (sometimes two) injected:
one fact of their journey is changed, as the rule table of tests/unit/test_rules.py does, and
the rule ids that change must raise are recorded. Rules are picked round-robin over the whole
catalogue, so every rule id is injected once at least as soon as that many participants are
injected. The labels are what was injected (and the relapses that happened, which raise the
RELAPSE alert): the protocol is never run to compute them, so a replay of the events through the
protocol must reproduce them exactly, multiplicity included.

Deterministic: everything is drawn from ``random.Random(seed)`` (one generator per participant,
seeded from it), never from the global generator or the clock, so the same seed gives
byte-identical files.

The modules, in the order a participant goes through them:

- ``clock``, ``ids``: the study calendar, timestamps, deterministic event ids;
- ``catalogue``: the rule ids, how their injections group, the clinical vocabulary;
- ``journey`` (with the lab generators of ``labs``): one participant's clean journey and events;
- ``eligibility``, ``injections``: one function per rule id that changes a journey to raise it;
- ``cohort``: the participants of a seed, and the summary;
- ``wire``: a journey's contract-v1 JSON lines, watermarks merged in;
- ``offline``: the cohort to files in log order (``trialguard simulate --out``);
- ``live``: the cohort published to Kafka at a watchable pace (``trialguard simulate --live``).
"""

from __future__ import annotations

from services.simulator.catalogue import RULE_IDS, SCREEN_FAILURE_RULES
from services.simulator.clock import CUTOFF_DAY, DAY, RECRUITMENT_DAYS, STUDY_ID, STUDY_START, TICK_EVERY_DAYS
from services.simulator.cohort import Summary, participants
from services.simulator.ids import EVENT_NAMESPACE, MAX_SEED, event_id
from services.simulator.journey import Ev, Journey, Visit
from services.simulator.labs import Lab
from services.simulator.offline import run, simulate
from services.simulator.wire import lines

__all__ = [
    "CUTOFF_DAY",
    "DAY",
    "EVENT_NAMESPACE",
    "MAX_SEED",
    "RECRUITMENT_DAYS",
    "RULE_IDS",
    "SCREEN_FAILURE_RULES",
    "STUDY_ID",
    "STUDY_START",
    "TICK_EVERY_DAYS",
    "Ev",
    "Journey",
    "Lab",
    "Summary",
    "Visit",
    "event_id",
    "lines",
    "participants",
    "run",
    "simulate",
]
