"""How a TrialGuard client authenticates to Kafka: SASL/SCRAM credentials and TLS, from flags or env.

A secured broker (``KAFKA_SECURE=1 scripts/kafka.sh up``, or any SCRAM/TLS cluster) gives every
component a principal of its own, and ACLs say what each may read and write. Every Kafka client
of TrialGuard (aiokafka producers, consumers and admin clients, FastStream brokers) is built from
the one :class:`KafkaSecurity` of its :class:`~services.kafka.KafkaSettings`:
``aiokafka_kwargs()`` for aiokafka, ``faststream_security()`` for FastStream's ``KafkaBroker``.

The password never comes from a command-line flag (``ps`` would show it to every local user):
it is read from the environment (``TRIALGUARD_KAFKA_PASSWORD``) or from a file
(``--kafka-password-file``), and it is held as a ``SecretStr``, so that no ``repr`` or log shows it.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import SecretStr

ENV_PREFIX = "TRIALGUARD_KAFKA_"

E = TypeVar("E", bound=StrEnum)


class SecurityProtocol(StrEnum):
    """Kafka's ``security.protocol``: authentication (SASL) and encryption (SSL, i.e. TLS)."""

    PLAINTEXT = "PLAINTEXT"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"
    SSL = "SSL"

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    """The SASL mechanisms TrialGuard speaks: SCRAM only (PLAIN would send the password itself)."""

    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSecurityError(ValueError):
    """Security settings that cannot work together; the message names the flag or variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The credentials and TLS files of one Kafka client.

    Attributes:
        protocol: PLAINTEXT (the default: no authentication, as a local broker), SASL_PLAINTEXT,
            SASL_SSL or SSL.
        mechanism: The SCRAM variant for the SASL protocols.
        username: The SCRAM user (the Kafka principal ``User:<username>``); SASL only.
        password: The SCRAM password; SASL only. Never shown by ``repr``.
        ssl_cafile: The CA bundle that signed the broker's certificate (TLS only; default: the
            system's CAs).
        ssl_certfile: This client's certificate, for mutual TLS (TLS only).
        ssl_keyfile: The private key of ``ssl_certfile`` (TLS only).
    """

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        check_security(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """The settings of the ``TRIALGUARD_KAFKA_*`` variables (PLAINTEXT when none is set).

        Raises:
            KafkaSecurityError: a value that is not allowed, or settings that do not fit together.
        """
        return security_from_values({}, os.environ if environ is None else environ)

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``.

        Empty for PLAINTEXT, so that an unsecured client is built exactly as before.
        """
        kwargs: dict[str, Any] = {}
        if self.protocol is SecurityProtocol.PLAINTEXT:
            return kwargs
        kwargs["security_protocol"] = self.protocol.value
        if self.protocol.uses_sasl:
            username, password = self._credentials()
            kwargs["sasl_mechanism"] = self.mechanism.value
            kwargs["sasl_plain_username"] = username
            kwargs["sasl_plain_password"] = password
        if self.protocol.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def faststream_security(self) -> BaseSecurity | None:
        """The ``security=`` of a FastStream ``KafkaBroker`` (None for PLAINTEXT, FastStream's default)."""
        if self.protocol is SecurityProtocol.PLAINTEXT:
            return None
        context = self.ssl_context() if self.protocol.uses_tls else None
        if not self.protocol.uses_sasl:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        scram = SASLScram512 if self.mechanism is SaslMechanism.SCRAM_SHA_512 else SASLScram256
        return scram(*self._credentials(), ssl_context=context, use_ssl=self.protocol.uses_tls)

    def _credentials(self) -> tuple[str, str]:
        if self.username is None or self.password is None:  # check_security refuses this for SASL
            raise KafkaSecurityError(f"{self.protocol.value} needs a Kafka username and password")
        return self.username, self.password.get_secret_value()

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that verifies the broker's certificate and host name (aiokafka's helper).

        Raises:
            KafkaSecurityError: a CA, certificate or key file that cannot be read or used.
        """
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        except (OSError, ssl.SSLError) as e:
            raise KafkaSecurityError(f"TLS files (--kafka-ssl-cafile/-certfile/-keyfile): {e}") from None
        return context


def check_security(security: KafkaSecurity) -> None:
    """Guard: SASL has a user and a password, the other protocols none, TLS files only with TLS.

    Raises:
        KafkaSecurityError: naming the flags (and variables) that are missing or out of place.
    """
    protocol = security.protocol
    if protocol.uses_sasl:
        if not security.username:
            raise KafkaSecurityError(
                f"--kafka-security-protocol {protocol.value} needs --kafka-username (or {ENV_PREFIX}USERNAME)"
            )
        if security.password is None or not security.password.get_secret_value():
            raise KafkaSecurityError(
                f"--kafka-security-protocol {protocol.value} needs a password: {ENV_PREFIX}PASSWORD or "
                f"--kafka-password-file (or {ENV_PREFIX}PASSWORD_FILE)"
            )
    elif security.username is not None or security.password is not None:
        raise KafkaSecurityError(
            f"a Kafka username or password is used only with --kafka-security-protocol SASL_PLAINTEXT or "
            f"SASL_SSL, not {protocol.value}"
        )
    tls_files = (security.ssl_cafile, security.ssl_certfile, security.ssl_keyfile)
    if not protocol.uses_tls and any(f is not None for f in tls_files):
        raise KafkaSecurityError(
            f"--kafka-ssl-cafile/-certfile/-keyfile are used only with --kafka-security-protocol SSL or SASL_SSL, "
            f"not {protocol.value}"
        )
    if security.ssl_keyfile is not None and security.ssl_certfile is None:
        raise KafkaSecurityError("--kafka-ssl-keyfile needs --kafka-ssl-certfile (the certificate of that key)")


SETTINGS: tuple[tuple[str, str], ...] = (
    ("security_protocol", "SECURITY_PROTOCOL"),
    ("sasl_mechanism", "SASL_MECHANISM"),
    ("username", "USERNAME"),
    ("password_file", "PASSWORD_FILE"),
    ("ssl_cafile", "SSL_CAFILE"),
    ("ssl_certfile", "SSL_CERTFILE"),
    ("ssl_keyfile", "SSL_KEYFILE"),
)
"""Each setting's flag destination and its variable (after ``TRIALGUARD_KAFKA_``)."""


def add_security_args(parser: argparse.ArgumentParser) -> None:
    """Add the ``--kafka-*`` security options; each defaults to its ``TRIALGUARD_KAFKA_*`` variable.

    There is deliberately no ``--kafka-password``: a flag's value is visible to every local user.
    """
    group = parser.add_argument_group("Kafka security (a secured broker: SASL/SCRAM, TLS)")
    group.add_argument(
        "--kafka-security-protocol",
        dest="security_protocol",
        choices=[p.value for p in SecurityProtocol],
        help=f"how to connect (env {ENV_PREFIX}SECURITY_PROTOCOL; default PLAINTEXT)",
    )
    group.add_argument(
        "--kafka-sasl-mechanism",
        dest="sasl_mechanism",
        choices=[m.value for m in SaslMechanism],
        help=f"SCRAM variant for SASL_* (env {ENV_PREFIX}SASL_MECHANISM; default SCRAM-SHA-512)",
    )
    group.add_argument(
        "--kafka-username", dest="username", metavar="NAME", help=f"SCRAM user (env {ENV_PREFIX}USERNAME)"
    )
    group.add_argument(
        "--kafka-password-file",
        dest="password_file",
        metavar="FILE",
        help=f"file holding the SCRAM password (env {ENV_PREFIX}PASSWORD_FILE; or the password itself in "
        f"{ENV_PREFIX}PASSWORD)",
    )
    # Also keeps argparse from taking "--kafka-password SECRET" as an abbreviation of --kafka-password-file.
    group.add_argument("--kafka-password", nargs="?", action=_RefusePasswordFlag, help=argparse.SUPPRESS)
    group.add_argument(
        "--kafka-ssl-cafile", dest="ssl_cafile", metavar="FILE", help=f"CA bundle (env {ENV_PREFIX}SSL_CAFILE)"
    )
    group.add_argument(
        "--kafka-ssl-certfile",
        dest="ssl_certfile",
        metavar="FILE",
        help=f"client certificate for mutual TLS (env {ENV_PREFIX}SSL_CERTFILE)",
    )
    group.add_argument(
        "--kafka-ssl-keyfile",
        dest="ssl_keyfile",
        metavar="FILE",
        help=f"private key of the client certificate (env {ENV_PREFIX}SSL_KEYFILE)",
    )


class _RefusePasswordFlag(argparse.Action):
    """``--kafka-password``: refused, without repeating its value."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        parser.error(
            f"--kafka-password: a password on the command line is visible to every local user; use "
            f"{ENV_PREFIX}PASSWORD or --kafka-password-file"
        )


def security_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The security of :func:`add_security_args`' options, each falling back to its variable.

    Raises:
        KafkaSecurityError: see :func:`security_from_values`.
    """
    flags = {name: getattr(args, name, None) for name, _ in SETTINGS}
    return security_from_values(flags, os.environ if environ is None else environ)


def security_from_values(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> KafkaSecurity:
    """Flags first, then ``TRIALGUARD_KAFKA_*`` variables; the password from its file or variable.

    Raises:
        KafkaSecurityError: an unknown protocol or mechanism, a password given twice, a password
            file that cannot be read or is empty, or settings that do not fit (:func:`check_security`).
    """

    def value(name: str, variable: str) -> str | None:
        given = flags.get(name)
        return given if given else (environ.get(ENV_PREFIX + variable) or None)

    chosen = {name: value(name, variable) for name, variable in SETTINGS}
    protocol = _choice(SecurityProtocol, chosen["security_protocol"], "SECURITY_PROTOCOL", SecurityProtocol.PLAINTEXT)
    mechanism = _choice(SaslMechanism, chosen["sasl_mechanism"], "SASL_MECHANISM", SaslMechanism.SCRAM_SHA_512)
    password = _password(chosen["password_file"], environ.get(ENV_PREFIX + "PASSWORD") or None)

    def path(name: str) -> Path | None:
        raw = chosen[name]
        return None if raw is None else Path(raw)

    return KafkaSecurity(
        protocol=protocol,
        mechanism=mechanism,
        username=chosen["username"],
        password=password,
        ssl_cafile=path("ssl_cafile"),
        ssl_certfile=path("ssl_certfile"),
        ssl_keyfile=path("ssl_keyfile"),
    )


def _choice(kind: type[E], raw: str | None, variable: str, default: E) -> E:
    if raw is None:
        return default
    try:
        return kind(raw.strip().upper())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise KafkaSecurityError(
            f"Kafka {variable.lower().replace('_', ' ')} {raw[:40]!r} (flag or {ENV_PREFIX}{variable}): "
            f"one of {allowed}"
        ) from None


def _password(password_file: str | None, from_env: str | None) -> SecretStr | None:
    if password_file is None:
        return None if from_env is None else SecretStr(from_env)
    if from_env is not None:
        raise KafkaSecurityError(
            f"the Kafka password is given twice: {ENV_PREFIX}PASSWORD and a password file; keep one"
        )
    try:
        text = Path(password_file).read_text(encoding="utf-8")
    except OSError as e:
        raise KafkaSecurityError(f"Kafka password file {password_file}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise KafkaSecurityError(f"Kafka password file {password_file}: not UTF-8 text") from None
    password = text.rstrip("\r\n")
    if not password:
        raise KafkaSecurityError(f"Kafka password file {password_file} is empty")
    return SecretStr(password)
