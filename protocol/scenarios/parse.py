"""Read Gherkin ``.feature`` files (the official Cucumber parser) into bound scenarios."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gherkin.errors import CompositeParserException, ParserError
from gherkin.parser import Parser
from gherkin.token_scanner import TokenScanner

from protocol.scenarios.expect import Expectation, parse_expectation
from protocol.scenarios.model import BoundStep, Scenario, ScenarioError
from protocol.scenarios.vocabulary import Vocabulary

_PLACEHOLDER = re.compile(r"<([^<>]+)>")


def load_scenarios(paths: Iterable[Path], vocabulary: Vocabulary) -> list[Scenario]:
    """Every scenario of the given feature files and folders (their ``*.feature``, sorted).

    Raises:
        ScenarioError: a file that cannot be read or a scenario that cannot be bound.
    """
    scenarios: list[Scenario] = []
    for path in paths:
        files = sorted(path.glob("*.feature")) if path.is_dir() else [path]
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ScenarioError(str(file), 0, f"cannot be read: {e}") from None
            scenarios += parse_feature(text, str(file), vocabulary)
    return scenarios


def parse_feature(text: str, path: str, vocabulary: Vocabulary) -> list[Scenario]:
    """The scenarios of one feature file, each step bound to the vocabulary.

    Raises:
        ScenarioError: Gherkin syntax, a step the vocabulary does not know, a scenario without
            its base journey or without a Then.
    """
    try:
        document = Parser().parse(TokenScanner(text))
    except CompositeParserException as e:
        first = e.errors[0]
        raise ScenarioError(path, _line_of(first), _message_of(first)) from None
    except ParserError as e:
        raise ScenarioError(path, _line_of(e), _message_of(e)) from None
    feature = document.get("feature")
    if feature is None:
        raise ScenarioError(path, 1, "no Feature: in this file")
    reader = _Reader(path, feature["name"], vocabulary)
    children: list[dict[str, Any]] = [dict(child) for child in feature["children"]]
    reader.children(children, _tags(feature), [])
    if not reader.scenarios:
        raise ScenarioError(path, feature["location"]["line"], "this feature has no scenario")
    return reader.scenarios


def _line_of(error: Exception) -> int:
    location = getattr(error, "location", None) or {}
    return int(location.get("line") or 0)


def _message_of(error: Exception) -> str:
    return re.sub(r"^\(\d+:\d+\): ", "", str(error.args[0] if error.args else error))


def _tags(node: Mapping[str, Any]) -> set[str]:
    return {t["name"].removeprefix("@") for t in node.get("tags", ())}


class _Reader:
    def __init__(self, path: str, feature: str, vocabulary: Vocabulary) -> None:
        self.path, self.feature, self.vocabulary = path, feature, vocabulary
        self.scenarios: list[Scenario] = []

    def children(self, children: list[dict[str, Any]], tags: set[str], background: list[dict[str, Any]]) -> None:
        background = list(background)
        for child in children:
            if "background" in child:
                background += child["background"]["steps"]
            elif "rule" in child:
                rule = child["rule"]
                self.children(rule["children"], tags | _tags(rule), background)
            elif "scenario" in child:
                self.scenario(child["scenario"], tags, background)

    def scenario(self, node: dict[str, Any], tags: set[str], background: list[dict[str, Any]]) -> None:
        tags = tags | _tags(node)
        steps = [*background, *node["steps"]]
        if not node.get("examples"):
            self.scenarios.append(self.bind(node["name"], node["location"]["line"], tags, steps, {}))
            return
        for examples in node["examples"]:
            header = [c["value"] for c in (examples.get("tableHeader") or {}).get("cells", ())]
            for row in examples.get("tableBody", ()):
                values = dict(zip(header, (c["value"] for c in row["cells"]), strict=True))
                name = f"{node['name']} ({', '.join(values.values())})"
                self.scenarios.append(self.bind(name, row["location"]["line"], tags | _tags(examples), steps, values))

    def bind(
        self, name: str, line: int, tags: set[str], steps: list[dict[str, Any]], values: Mapping[str, str]
    ) -> Scenario:
        journey: str | None = None
        bound: list[BoundStep] = []
        expectations: list[Expectation] = []
        phase = "Context"
        for step in steps:
            at = step["location"]["line"]
            text = _filled(step["text"], values, self.path, at)
            phase = phase if step["keywordType"] in ("Conjunction", "Unknown") else step["keywordType"]
            table = [[_filled(c["value"], values, self.path, at) for c in r["cells"]] for r in _rows(step)]
            doc = _filled(step["docString"]["content"], values, self.path, at) if "docString" in step else None
            if phase == "Outcome":
                expectations.append(self.expectation(text, at, table or None))
            elif journey is None:
                if text not in self.vocabulary.journeys:
                    known = "; ".join(repr(j) for j in self.vocabulary.journeys)
                    raise ScenarioError(self.path, at, f"a scenario starts from a base journey ({known}), not {text!r}")
                journey = text
            else:
                bound.append(self.override(text, at, table, doc))
        if journey is None:
            raise ScenarioError(self.path, line, f"scenario {name!r} has no Given base journey")
        if not expectations:
            raise ScenarioError(self.path, line, f"scenario {name!r} expects nothing: add a Then step")
        return Scenario(
            self.path, self.feature, name, line, frozenset(tags), journey, tuple(bound), tuple(expectations)
        )

    def expectation(self, text: str, line: int, table: list[list[str]] | None) -> Expectation:
        try:
            expectation = parse_expectation(text, line, table)
        except ValueError as e:
            raise ScenarioError(self.path, line, str(e)) from None
        if expectation is None:
            raise ScenarioError(
                self.path,
                line,
                f"a Then step says 'RULE is raised [N times] [with name = value, ...]', 'RULE is not raised', "
                f"'nothing else is raised', 'nothing is raised' or 'the findings are RULE, ...', not {text!r}",
            )
        return expectation

    def override(self, text: str, line: int, table: list[list[str]], doc: str | None) -> BoundStep:
        try:
            function, arguments = self.vocabulary.match(text)
        except LookupError as e:
            raise ScenarioError(self.path, line, str(e.args[0])) from None
        if table:
            arguments["table"] = table
        if doc is not None:
            arguments["doc"] = doc
        return BoundStep(text, line, function, arguments)


def _rows(step: Mapping[str, Any]) -> list[dict[str, Any]]:
    table = step.get("dataTable")
    return list(table["rows"]) if table else []


def _filled(text: str, values: Mapping[str, str], path: str, line: int) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            if not values:
                return match.group(0)  # not an outline: a literal <...>
            raise ScenarioError(path, line, f"<{name}> is not a column of the examples ({', '.join(values)})")
        return values[name]

    return _PLACEHOLDER.sub(fill, text)
