"""Hostile input made from valid events, for the fuzzer (tests/unit/test_fuzz.py) and for a live test
that publishes it to Kafka.

A ``Recipe`` says which valid line to start from and which mutations (tests/mutations.py) to
apply; building it is deterministic, so a failing input is its recipe. Hypothesis draws recipes
(``recipes``) and shrinks them like any integers; ``random.Random`` draws them just as well
(``random_recipe``, ``hostile_records``).

The strings and keys the mutations invent carry ``MARKER``: logs (``ContractError.summary``)
must never show it.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from contracts import ContractError, parse_event
from tests.mutations import BYTE_OPS, DEPTHS, MARKER, OPS, STRING_LENGTHS, TREE_OPS, Draft

__all__ = ["MARKER", "Mutation", "Recipe", "Tally", "hostile_records", "random_recipe", "recipes", "rejected"]

_HUGE = 2**16
"""The range of ``at`` and ``arg``: anything well above the number of places and variants."""


@dataclass(frozen=True)
class Mutation:
    """One change: the operator's name, where (``at``), and which variant (``arg``)."""

    op: str
    at: int = 0
    arg: int = 0


@dataclass(frozen=True)
class Recipe:
    """A valid line (``base``, an index into the corpus), the mutations, and how to encode it."""

    base: int
    mutations: tuple[Mutation, ...]
    ascii: bool = True

    def build(self, corpus: Sequence[bytes]) -> bytes:
        """The hostile message: tree mutations on the parsed line, then byte mutations on its encoding."""
        draft = Draft(json.loads(corpus[self.base % len(corpus)]), corpus)
        for m in self.mutations:
            if m.op in TREE_OPS:
                TREE_OPS[m.op](draft, m.at, m.arg)
        data = draft.encode(ensure_ascii=self.ascii)
        for m in self.mutations:
            if m.op in BYTE_OPS:
                data = BYTE_OPS[m.op](data, m.at, m.arg)
        return data


def recipes(corpus_size: int) -> st.SearchStrategy[Recipe]:
    """Recipes of one to three mutations of a line of a corpus of ``corpus_size`` lines."""
    mutation = st.builds(Mutation, st.sampled_from(OPS), st.integers(0, _HUGE - 1), st.integers(0, _HUGE - 1))
    mutations = st.lists(mutation, min_size=1, max_size=3).map(tuple)
    return st.builds(Recipe, st.integers(0, corpus_size - 1), mutations, st.booleans())


def random_recipe(rng: random.Random, corpus_size: int) -> Recipe:
    """A recipe of one to three mutations drawn with ``rng`` (as the hypothesis strategy draws them)."""
    mutations = tuple(
        Mutation(rng.choice(OPS), rng.randrange(_HUGE), rng.randrange(_HUGE)) for _ in range(rng.randint(1, 3))
    )
    return Recipe(rng.randrange(corpus_size), mutations, ascii=rng.random() < 0.5)


# --- records a live test publishes -------------------------------------------------------------

MAX_RECORD_BYTES = 900_000
"""Hostile records stay under this, so a broker with the default ``message.max.bytes`` (about
1 MiB) takes them, and their dead-letter copies with the reason headers."""


def rejected(data: bytes) -> bool:
    """Whether the contract rejects the message."""
    try:
        parse_event(data)
    except ContractError:
        return True
    return False


def hostile_records(rng: random.Random, valid_lines: Sequence[bytes], n: int) -> list[bytes]:
    """``n`` message values that the contract rejects, each under ``MAX_RECORD_BYTES``.

    The first four are always there (when ``n`` allows): a field of about 500 KB, arrays nested
    200,000 levels deep, invalid UTF-8, and a NUL byte. The rest are random recipes, kept when
    rejected.

    Args:
        rng: the source of randomness (seed it to get the same records).
        valid_lines: contract-v1 lines to mutate (e.g. ``tests.builders.example_lines()``).
        n: how many records.
    """

    def one(op: str, arg: int) -> Recipe:
        return Recipe(rng.randrange(len(valid_lines)), (Mutation(op, rng.randrange(_HUGE), arg),))

    must = [
        one("huge_string", STRING_LENGTHS.index(500_000)),
        one("deep", DEPTHS.index(200_000)),  # shape 0: arrays, 400 KB
        one("bad_utf8", rng.randrange(_HUGE)),
        one("nul", 1),  # raw, inside a string
    ]
    records = [r.build(valid_lines) for r in must[:n]]
    while len(records) < n:
        data = random_recipe(rng, len(valid_lines)).build(valid_lines)
        if len(data) < MAX_RECORD_BYTES and rejected(data):
            records.append(data)
    return records


# --- the fuzz run's tally, printed at the end of the pytest run (tests/conftest.py) -------------


@dataclass
class Tally:
    """What became of the fuzzer's inputs."""

    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    profile: str = ""
    seed: int | None = None

    def line(self) -> str:
        total = sum(self.outcomes.values())
        rejected, processed = self.outcomes["rejected"], self.outcomes["processed"]
        return (
            f"fuzz: {total:,} inputs: {rejected:,} rejected (ContractError), {processed:,} processed, "
            f"{self.outcomes['other']:,} other exceptions (profile {self.profile}, seed {self.seed})"
        )


TALLY = Tally()
