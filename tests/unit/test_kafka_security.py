"""Kafka security settings: flags and variables parsed into one KafkaSecurity, the clients'
keyword arguments built from it, and the password kept out of every repr, message and log."""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

import pytest
import structlog
from faststream.kafka.security import parse_security
from faststream.security import SASLScram256, SASLScram512

from services.cli import main
from services.kafka import KafkaSettings, add_kafka_args, settings_from_args
from services.kafka_security import KafkaSecurity, KafkaSecurityError, SecurityProtocol, security_from_values

PASSWORD = "s3cret-Pa55word-never-shown"


def parse(argv: list[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None) -> KafkaSettings:
    for name in [n for n in os.environ if n.startswith("TRIALGUARD_KAFKA_")]:
        monkeypatch.delenv(name)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_kafka_args(parser)
    return settings_from_args(parser.parse_args(argv))


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.password"
    path.write_text(PASSWORD + "\n")
    return path


def test_without_settings_clients_are_built_exactly_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse([], monkeypatch)
    assert settings.security == KafkaSecurity()
    assert settings.client_kwargs() == {"bootstrap_servers": settings.bootstrap_servers}
    assert settings.faststream_security() is None


def test_scram_from_flags_and_a_password_file(monkeypatch: pytest.MonkeyPatch, password_file: Path) -> None:
    settings = parse(
        ["--kafka-security-protocol", "SASL_PLAINTEXT", "--kafka-username", "gateway", "--kafka-password-file",
         str(password_file)],
        monkeypatch,
    )  # fmt: skip
    assert settings.client_kwargs() == {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "gateway",
        "sasl_plain_password": PASSWORD,  # the file's trailing newline is not part of it
    }
    security = settings.faststream_security()
    assert isinstance(security, SASLScram512)
    assert {k: v for k, v in parse_security(security).items() if v is not None} == settings.security.aiokafka_kwargs()


def test_scram_from_the_environment_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "TRIALGUARD_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
        "TRIALGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "TRIALGUARD_KAFKA_USERNAME": "rules",
        "TRIALGUARD_KAFKA_PASSWORD": PASSWORD,
    }
    settings = parse(["--kafka-username", "operator"], monkeypatch, env)
    kwargs = settings.security.aiokafka_kwargs()
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
        "SCRAM-SHA-256",
        "operator",
        PASSWORD,
    )
    assert isinstance(settings.faststream_security(), SASLScram256)


def test_tls_builds_a_verifying_context_for_aiokafka_and_faststream(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TRIALGUARD_KAFKA_USERNAME": "rules", "TRIALGUARD_KAFKA_PASSWORD": PASSWORD}
    settings = parse(["--kafka-security-protocol", "SASL_SSL"], monkeypatch, env)
    context = settings.security.aiokafka_kwargs()["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname
    assert context.verify_mode is ssl.CERT_REQUIRED
    security = settings.faststream_security()
    assert security is not None
    assert security.use_ssl
    assert parse_security(security)["security_protocol"] == "SASL_SSL"
    mtls = parse(["--kafka-security-protocol", "SSL"], monkeypatch)
    assert mtls.client_kwargs()["security_protocol"] == "SSL"
    assert parse_security(mtls.faststream_security())["security_protocol"] == "SSL"


def test_a_password_flag_is_refused_without_repeating_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse would otherwise take --kafka-password as an abbreviation of --kafka-password-file.
    for argv in (["--kafka-password", PASSWORD], [f"--kafka-password={PASSWORD}"], ["--kafka-pass", PASSWORD]):
        with pytest.raises(SystemExit):
            parse(argv, monkeypatch)
        err = capsys.readouterr().err
        assert "visible to every local user" in err or "ambiguous option: --kafka-pass" in err
        assert PASSWORD not in err


def test_the_password_is_in_no_repr_and_no_log(
    monkeypatch: pytest.MonkeyPatch, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = parse(
        ["--kafka-security-protocol", "SASL_PLAINTEXT", "--kafka-username", "gateway", "--kafka-password-file",
         str(password_file)],
        monkeypatch,
    )  # fmt: skip
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.security)
    assert "gateway" in repr(settings), "the user name is not secret: it says which principal this is"
    structlog.get_logger("test").warning("settings", settings=settings, security=settings.security)
    captured = capsys.readouterr()
    assert "settings" in captured.out + captured.err
    assert PASSWORD not in captured.out + captured.err


def refused(flags: Mapping[str, str | None], env: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message) as raised:
        security_from_values(flags, env)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"security_protocol": "SASL_PLAINTEXT"}, {"TRIALGUARD_KAFKA_PASSWORD": PASSWORD}, "needs --kafka-username"),
        ({"security_protocol": "SASL_SSL", "username": "rules"}, {}, "needs a password: TRIALGUARD_KAFKA_PASSWORD"),
        ({"username": "rules"}, {"TRIALGUARD_KAFKA_PASSWORD": PASSWORD}, "only with .*SASL_SSL, not PLAINTEXT"),
        ({}, {"TRIALGUARD_KAFKA_PASSWORD": PASSWORD}, "only with .*not PLAINTEXT"),
        ({"security_protocol": "SSL", "username": "rules"}, {"TRIALGUARD_KAFKA_PASSWORD": PASSWORD}, "not SSL"),
        ({"security_protocol": "SASL_PLAINTEXT", "username": "r", "ssl_cafile": "ca.pem"},
         {"TRIALGUARD_KAFKA_PASSWORD": PASSWORD}, "ssl-cafile.*only with .*not SASL_PLAINTEXT"),
        ({"security_protocol": "SSL", "ssl_keyfile": "client.key"}, {}, "keyfile needs --kafka-ssl-certfile"),
        ({}, {"TRIALGUARD_KAFKA_SECURITY_PROTOCOL": "KERBEROS"}, "'KERBEROS' .*KAFKA_SECURITY_PROTOCOL.*one of"),
        ({"sasl_mechanism": "PLAIN"}, {}, "'PLAIN' .*one of SCRAM-SHA-256, SCRAM-SHA-512"),
    ],
    ids=["no-user", "no-password", "user-without-sasl", "password-without-sasl", "user-with-ssl", "ca-without-tls",
         "key-without-cert", "unknown-protocol", "plain-mechanism"],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused_naming_the_flag(
    flags: dict[str, str | None], env: dict[str, str], message: str
) -> None:
    refused(flags, env, message)


def test_a_password_file_that_is_missing_empty_or_given_twice_is_refused(tmp_path: Path, password_file: Path) -> None:
    sasl = {"security_protocol": "SASL_PLAINTEXT", "username": "rules"}
    refused(sasl | {"password_file": str(tmp_path / "absent")}, {}, "absent: No such file")
    (tmp_path / "empty").write_text("\n")
    refused(sasl | {"password_file": str(tmp_path / "empty")}, {}, "empty is empty")
    refused(sasl | {"password_file": str(password_file)}, {"TRIALGUARD_KAFKA_PASSWORD": PASSWORD}, "given twice")


def test_a_ca_file_that_is_no_certificate_is_refused_when_the_client_is_built(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    security = security_from_values({"security_protocol": "SSL", "ssl_cafile": str(tmp_path / "ca.pem")}, {})
    assert security.protocol is SecurityProtocol.SSL
    with pytest.raises(KafkaSecurityError, match="TLS files"):
        security.aiokafka_kwargs()


def test_the_cli_names_a_bad_setting_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRIALGUARD_KAFKA_PASSWORD", PASSWORD)
    assert (
        main(["deviations", "--kafka-security-protocol", "SASL_PLAINTEXT", "--bootstrap-servers", "127.0.0.1:1"]) == 2
    )
    err = capsys.readouterr().err
    assert "configuration error: --kafka-security-protocol SASL_PLAINTEXT needs --kafka-username" in err
    assert PASSWORD not in err
