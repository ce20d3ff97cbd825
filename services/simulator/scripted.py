"""``trialguard simulate --study S`` for a study other than NCT06904729: a cohort written in the
study package's own scenario words.

The package's kit (found through the registry, ``protocol.kit.kit_of``) gives the base journey
("an eligible participant") and the steps that change one clinical fact; this module draws, per
participant, whether one deviation is injected and which (round-robin over the study's script,
so each rule is injected as soon as that many participants are), applies its steps, and labels
the participant with the rule ids the script says those steps raise. The labels come from the
script, never from running the protocol: a replay must reproduce them exactly.

Deterministic: ``random.Random(seed)`` only, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from protocol.kit import kit_of
from protocol.registry import versions_for

Injection = tuple[str, tuple[str, ...], tuple[str, ...]]
"""(name, the scenario steps that change the journey, the rule ids they raise, with repeats)."""

SCRIPTS: dict[str, tuple[Injection, ...]] = {
    "NCT06946485": (
        ("age 17", ("born on 2008-01-06",), ("ELIG-IN01",)),
        ("EULAR/ACR 9", ("EULAR/ACR 2019 score 9",), ("ELIG-IN02",)),
        ("one BILAG B", ("BILAG-2004 with 0 grade A and 1 grade B domain",), ("ELIG-IN03",)),
        ("SLEDAI 6", ("SLEDAI-2K 6",), ("ELIG-IN04",)),
        ("remission", ("history of remission",), ("ELIG-IN05",)),
        ("LVEF 50", ("LVEF 50 %",), ("ELIG-IN06",)),
        ("CrCl 59.6", ("born on 1975-06-01", "a woman weighing 60 kg", "creatinine 1.07 mg/dL"), ("ELIG-IN06",)),
        ("GM-CSF", ("GM-CSF from study day -20 to -11",), ("ELIG-IN06",)),
        ("no LVEF", ("no LVEF result",), ("ELIG-MISSING",)),
        ("late consent", ("consent signed on study day 4",), ("CONSENT-01",)),
        ("no confirmation", ("no eligibility confirmation",), ("SEQ-01",)),
        ("early lymphodepletion", ("lymphodepletion on study day 8",), ("SEQ-02",)),
        ("second infusion", ("a second CAR-T infusion on day 30 after infusion",), ("SEQ-03",)),
        ("leukapheresis", ("LeukapheresisPerformed on study day 12",), ("SEQ-05",)),
        ("CRS 3", ("an adverse event of CTCAE grade 3 with CRS grade 3 on day 2 after infusion",), ("SAFETY-CRS3",)),
        (
            "ICANS 3",
            ("an adverse event of CTCAE grade 3 with ICANS grade 3 on day 4 after infusion",),
            ("SAFETY-ICANS3",),
        ),
        (
            "acute GVHD",
            ("an adverse event of CTCAE grade 2 with acute GVHD grade 2 on day 21 after infusion",),
            ("SAFETY-GVHD",),
        ),
        ("SAE", ("a serious adverse event of CTCAE grade 3 on day 40 after infusion",), ("SAFETY-SAE",)),
    ),
}
"""Each study's injections, in its package's scenario words (the words are checked when applied)."""


def scripted_studies() -> tuple[str, ...]:
    """The studies this module simulates."""
    return tuple(SCRIPTS)


def cohort(study: str, count: int, seed: int, rate: float) -> Iterator[tuple[str, list[str], list[str]]]:
    """Each participant's id, contract-v1 JSON lines in log order, and labels (rule ids, sorted)."""
    protocol = versions_for(study).version("1.0")
    vocabulary = kit_of(protocol).vocabulary
    script = SCRIPTS[study]
    r = random.Random(seed)  # noqa: S311 (a simulation, not cryptography)
    injected = 0
    for n in range(1, count + 1):
        pid = f"S{seed}-{n:05d}"
        journey = vocabulary.journeys["an eligible participant"]()
        journey.pid = pid  # type: ignore[attr-defined]  # the package's journeys carry their participant id
        labels: list[str] = []
        if r.random() < rate:
            _name, steps, rules = script[injected % len(script)]
            injected += 1
            for text in steps:
                function, arguments = vocabulary.match(text)
                function(journey, **arguments)
            labels = sorted(rules)
        yield pid, [event.model_dump_json() for event in journey.events()], labels


def run(study: str, count: int, seed: int, out: str, labels: str | None, rate: float, *, stderr: TextIO) -> int:
    """Write the cohort and its labels; a summary on ``stderr``. Returns the exit code."""
    all_labels: dict[str, list[str]] = {}
    events = 0
    with Path(out).open("w", encoding="utf-8") as f:
        for pid, lines, rules in cohort(study, count, seed, rate):
            f.writelines(line + "\n" for line in lines)
            events += len(lines)
            if rules:
                all_labels[pid] = rules
    if labels is not None:
        Path(labels).write_text(json.dumps(all_labels, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for rules in all_labels.values():
        for rule in rules:
            counts[rule] = counts.get(rule, 0) + 1
    stderr.write(f"simulated {study}, seed {seed}, deviation rate {rate}: {count} participants, {events:,} events\n")
    stderr.write(f"  participants with injected deviations: {len(all_labels)}\n  rule            expected findings\n")
    for rule, n in sorted(counts.items()):
        stderr.write(f"  {rule:<15} {n:>5}\n")
    return 0
