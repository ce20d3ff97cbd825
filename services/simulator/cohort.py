"""The cohort: participants drawn one after the other from the master generator, each with the
rules injected into them, and the summary of what a simulation produced."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from services.simulator.catalogue import GROUP_OF, RULE_IDS
from services.simulator.clock import DAY, RECRUITMENT_DAYS, STUDY_ID
from services.simulator.ids import MAX_SEED
from services.simulator.injections import inject
from services.simulator.journey import Ev, Journey
from services.simulator.study import schedule


@dataclass
class Summary:
    """What a simulation produced (for the stderr summary and the tests)."""

    participants: int = 0
    events: int = 0
    injected_participants: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def render(self, seed: int, rate: float) -> str:
        rate_s = f"{self.events / self.seconds:,.0f} events/s" if self.seconds > 0 else "-"
        lines = [
            f"simulated {STUDY_ID}, seed {seed}, deviation rate {rate:g}: {self.participants:,} participants, "
            f"{self.events:,} events ({self.events / max(self.participants, 1):.1f} per participant) "
            f"in {self.seconds:.1f} s ({rate_s})",
            "  outcomes: " + ", ".join(f"{name} {n:,}" for name, n in sorted(self.outcomes.items())),
            f"  participants with injected deviations: {self.injected_participants:,}",
            "  rule            injected  expected findings (with natural relapses)",
        ]
        for rule in RULE_IDS:
            if self.injected[rule] or self.expected[rule]:
                lines.append(f"  {rule:<14}  {self.injected[rule]:>8,}  {self.expected[rule]:>8,}")
        return "\n".join(lines) + "\n"

    def add(self, journey: Journey) -> None:
        """Count a participant: their outcome, what was injected and what must be raised."""
        self.participants += 1
        self.outcomes[outcome_of(journey)] += 1
        if journey.rules:
            self.injected_participants += 1
            self.injected.update(journey.rules)
        self.expected.update(journey.labels)


def cohort_problem(count: int, seed: int, rate: float) -> str | None:
    """What is wrong with a cohort's options (as the command line names them), or None."""
    if count < 1:
        return "--participants must be at least 1"
    if not -MAX_SEED <= seed <= MAX_SEED:
        return f"--seed must be between -{MAX_SEED} and {MAX_SEED}"
    if not 0.0 <= rate <= 1.0:
        return "--deviation-rate must be between 0 and 1"
    return None


def _choose(master: random.Random, cursor: int, rate: float) -> tuple[tuple[str, ...], int]:
    """The rules to inject into the next participant (round-robin over the catalogue)."""
    if master.random() >= rate:
        return (), cursor
    first = RULE_IDS[cursor % len(RULE_IDS)]
    cursor += 1
    if first == "CONSENT-02" or master.random() >= 0.15:
        return (first,), cursor
    others = [r for r in RULE_IDS if r != "CONSENT-02" and GROUP_OF[r] != GROUP_OF[first]]
    return (first, master.choice(others)), cursor


def participants(count: int, seed: int, rate: float) -> Iterator[tuple[Journey, list[Ev]]]:
    """Each participant's journey and events (no watermarks), in participant order."""
    master = random.Random(seed)  # noqa: S311 (a simulation, not cryptography)
    cursor = seed % len(RULE_IDS)
    for index in range(count):
        rules, cursor = _choose(master, cursor, rate)
        screen_fail = master.random() < 0.15
        consent_day = master.randrange(RECRUITMENT_DAYS)
        rng = random.Random(master.getrandbits(64))  # noqa: S311
        journey = Journey(index, seed, rng, rules, screen_fail, consent_day)
        inject(journey)
        events = journey.events()
        if journey.quiet is not None and _not_quiet(journey, events):
            _visit_early(journey)
            events = journey.events()
        journey.labels += ["RELAPSE"] * sum(1 for e in events if e.etype == "RelapseReported" and e.tag == "natural")
        yield journey, events


def _not_quiet(j: Journey, events: list[Ev]) -> bool:
    """Whether anything but the late visit happens on the days its lateness must stay unproven."""
    assert j.quiet is not None
    first, last = j.quiet
    late = [e for e in events if first <= e.t // DAY <= last]
    return len(late) != 1 or not late[0].tag.startswith("visit:")


def _visit_early(j: Journey) -> None:
    """Make the late visit an early one instead, when something else fell into its quiet days."""
    assert j.quiet is not None
    windows = {w.code: w for w in schedule()}
    visit = next(v for v in j.visits if v.day == j.quiet[1])
    window = windows[visit.code]
    visit.day = j.infusion_day + window.day - window.window_days - j.r.randint(1, 10)
    j.quiet = None


def outcome_of(journey: Journey) -> str:
    """How the participant's journey ended (or where it stood at the cut-off)."""
    if journey.outcome != "enrolled":
        return journey.outcome
    if journey.visits and journey.visits[-1].code == "M24":
        return "completed M24"
    return "in follow-up at cut-off"
