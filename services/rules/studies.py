"""Several studies in one rules service process: one :class:`RulesService` per study, run side by side.

Each study keeps everything a study had when a process served one: its own topics
(``<namespace>.<study>.…``), its own consumer group and transactional ids (both carry the study),
so exactly-once holds per study exactly as before and a study's instances can still be scaled
out on their own. What the studies share is the process: one event loop, one ``/health`` (ready
once every study is) and one ``/metrics`` where every series carries a ``study`` label. A study
whose service fails on a configuration error stops the others cleanly and the process exits with
that error; nothing else ends a study's service early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from protocol.registry import ProtocolLookupError
from services.errors import ConfigurationError
from services.rules.service import RulesService

log = structlog.get_logger("trialguard.rules")

STATUS_ORDER = ("waiting_for_broker", "restoring", "ready")
"""A process's status is that of its least advanced study, in this order."""


def loadable(studies: Sequence[str], load: Callable[[str], object], *, named: bool) -> list[str]:
    """The studies whose protocol loads, loaded now so that a missing or broken package is known
    before any service starts.

    Args:
        studies: the chosen studies.
        load: loads one study's protocol (``protocol.registry.versions_for``).
        named: whether the operator named them: then every one must load; else (every installed
            study) one that fails is left out with an error logged, as the registry leaves a
            broken package out and keeps the others working.

    Raises:
        ConfigurationError: naming each study that cannot be had and why (named ones), or none left.
    """
    problems: list[str] = []
    ok: list[str] = []
    for study in studies:
        try:
            load(study)
        except ProtocolLookupError as e:
            problems.append(str(e))
            if not named:
                log.error("study_not_served", study=study, error=type(e).__name__)
            continue
        ok.append(study)
    if problems and (named or not ok):
        raise ConfigurationError("; ".join(problems))
    return ok


class StudiesCollector(Collector):
    """Every study's metric families as one set, each sample labelled with its ``study``."""

    def __init__(self, registries: dict[str, CollectorRegistry]) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for study, registry in self.registries.items():
            for family in registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                merged.samples += [
                    Sample(s.name, {"study": study, **s.labels}, s.value, s.timestamp, s.exemplar)
                    for s in family.samples
                ]
        yield from families.values()


class Studies:
    """The rules services of the studies one process serves.

    Args:
        services: one per study, keyed by study id (each on its own settings' topics).
    """

    def __init__(self, services: dict[str, RulesService]) -> None:
        self.services = services
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StudiesCollector({s: svc.metrics.registry for s, svc in services.items()}))

    @property
    def status(self) -> str:
        """``ready`` once every study's service is; else the least advanced study's status."""
        return min((svc.status for svc in self.services.values()), key=STATUS_ORDER.index, default="ready")

    async def run(self, stop: asyncio.Event) -> None:
        """Run every study's service until ``stop`` is set.

        Raises:
            ConfigurationError: a study's service refused its settings (the others were stopped
                cleanly first).
        """
        failures: list[BaseException] = []

        async def one(study: str, service: RulesService) -> None:
            # Bound in this task's context only: every log line of this study's service (its
            # workers and rebalance callbacks are created from here) names the study.
            structlog.contextvars.bind_contextvars(study=study)
            try:
                await service.run(stop)
            except Exception as e:
                log.error("study_service_failed", error=type(e).__name__)
                failures.append(e)
                stop.set()

        await asyncio.gather(*(one(study, svc) for study, svc in self.services.items()))
        if failures:
            raise failures[0]
