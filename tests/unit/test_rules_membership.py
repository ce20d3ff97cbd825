"""The rules service's instance id (``--instance-id``): what a name may be, and what the command makes of it."""

from __future__ import annotations

import pytest

from services.cli import build_parser
from services.errors import ConfigurationError
from services.rules.membership import InstanceIdInUseError, check_instance_id


@pytest.mark.parametrize("name", ["rules-1", "a", "pod.rules_0", "x" * 100])
def test_a_plain_name_is_an_instance_id(name: str) -> None:
    assert check_instance_id(name) == name


@pytest.mark.parametrize("name", [None, ""])
def test_no_name_is_a_dynamic_member(name: str | None) -> None:
    assert check_instance_id(name) is None


@pytest.mark.parametrize("name", ["rules 1", "rules/1", "x" * 101, "ru\nles", "rüles", "../../etc"])
def test_a_name_that_is_not_plain_is_refused_with_the_option_named(name: str) -> None:
    with pytest.raises(ConfigurationError, match="--instance-id") as refused:
        check_instance_id(name)
    assert "TRIALGUARD_INSTANCE_ID" in str(refused.value)


def test_an_id_taken_by_another_process_is_a_configuration_error() -> None:
    assert issubclass(InstanceIdInUseError, ConfigurationError)  # exit status 2, the message on stderr


def test_serve_takes_the_id_from_the_option_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALGUARD_INSTANCE_ID", "from-env")
    parser = build_parser()
    assert parser.parse_args(["rules", "serve"]).instance_id == "from-env"
    assert parser.parse_args(["rules", "serve", "--instance-id", "rules-2"]).instance_id == "rules-2"
    monkeypatch.setenv("TRIALGUARD_INSTANCE_ID", "")
    assert build_parser().parse_args(["rules", "serve"]).instance_id is None
    assert build_parser().parse_args(["rules", "shadow", "--version", "1.0"]).instance_id is None
