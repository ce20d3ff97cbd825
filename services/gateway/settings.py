"""Where the gateway listens, where it keeps its sources, and which broker and study it feeds."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from services.http_limits import add_http_limit_args
from services.kafka import KafkaSettings

DEFAULT_DATA_DIR: Final = ".trialguard/gateway"

MAX_BODY_BYTES: Final = 1024 * 1024
"""The largest request body, 1 MiB: about 500 real events (under 2 KB each) in one all-or-nothing
transaction. Bigger bodies answer 413 before they are read: a batch larger than this should be
split, and one request must not hold the broker's transaction (or the process's memory) for long."""


def default_data_dir() -> Path:
    """``TRIALGUARD_GATEWAY_DATA``, else ``.trialguard/gateway`` under the working directory."""
    return Path(os.environ.get("TRIALGUARD_GATEWAY_DATA") or DEFAULT_DATA_DIR)


def default_host() -> str:
    return os.environ.get("TRIALGUARD_GATEWAY_HOST") or "127.0.0.1"


def default_port() -> int:
    return int(os.environ.get("TRIALGUARD_GATEWAY_PORT") or "8090")


@dataclass(frozen=True)
class GatewaySettings:
    """The settings of one gateway process.

    Attributes:
        kafka: broker and study.
        data_dir: the sources store (API key digests: not disposable).
        host: address to listen on; loopback unless told otherwise.
        port: port to listen on (0: any free port).
        instance: this process's name in its Kafka transactional id; two running gateways must
            not share one (the later one fences the earlier). Defaults to ``host:port``.
        max_body_bytes: the largest request body (413 beyond).
        mllp_host: the HL7 v2 MLLP listener's address: loopback, since MLLP has no authentication
            of its own (the sender is identified by MSH-3/MSH-4 only); put a TLS tunnel in front.
        mllp_port: its port (-1: no listener).
        mllp_max_bytes: the largest MLLP frame (AR and close beyond).
        mllp_idle_timeout: seconds an MLLP frame may take to arrive whole.
        mllp_max_connections: MLLP connections at once.
        mllp_tls_cert: the listener's TLS certificate (PEM); None: plain TCP.
        mllp_tls_key: its private key (PEM).
        mllp_tls_client_ca: the CA (PEM) that must have signed each peer's client certificate.
        fhir_identifier_system: the ``Observation.subject.identifier.system`` whose value is the
            participant id (also looked for on the Patient the subject references in the request).
        fhir_patient_reference: also take the participant id from ``subject.reference``
            ``Patient/<id>``, for labs that use the study's participant ids as Patient ids.
        hl7_assigning_authority: the PID-3 assigning authority (CX-4) of the participant id; None
            takes the first PID-3 identifier.
        studies: the studies it feeds, each with its participant registry and topic
            (``services.gateway.routing``); none: ``kafka.study_id`` alone. The transactional id
            keeps ``kafka.study_id`` (the first study), as a one-study gateway's always had.
    """

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = field(default_factory=default_host)
    port: int = field(default_factory=default_port)
    instance: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    mllp_max_bytes: int = 1_048_576
    mllp_idle_timeout: float = 60.0
    mllp_max_connections: int = 32
    mllp_tls_cert: Path | None = None
    mllp_tls_key: Path | None = None
    mllp_tls_client_ca: Path | None = None
    fhir_identifier_system: str = "urn:trialguard:participant"
    fhir_patient_reference: bool = False
    hl7_assigning_authority: str | None = None
    studies: tuple[str, ...] = ()

    @property
    def studies_served(self) -> tuple[str, ...]:
        """The studies this gateway feeds (``studies``; the Kafka settings' study when none)."""
        return self.studies or (self.kafka.study_id,)

    @property
    def sources_path(self) -> Path:
        return self.data_dir / "sources.sqlite3"

    @property
    def transactional_id(self) -> str:
        """Stable per gateway process: a restarted gateway fences its own unfinished transaction."""
        instance = self.instance or f"{self.host}:{self.port}"
        return f"{self.kafka.namespace}.{self.kafka.study_id}.gateway.{instance}"


def add_data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` (shared by ``gateway serve`` and ``sources``)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        metavar="DIR",
        help="the gateway's sources store, DIR/sources.sqlite3 (env TRIALGUARD_GATEWAY_DATA; default %(default)s)",
    )


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    """The gateway's own options (the broker and study options are the CLI's common ones)."""
    parser.add_argument(
        "--host", default=default_host(), help="address to listen on (env TRIALGUARD_GATEWAY_HOST; default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default_port(),
        help="port to listen on (env TRIALGUARD_GATEWAY_PORT; 0: any free port; default %(default)s)",
    )
    parser.add_argument(
        "--instance",
        default=os.environ.get("TRIALGUARD_GATEWAY_INSTANCE") or None,
        help="this gateway's name in its Kafka transactional id, unique among running gateways "
        "(env TRIALGUARD_GATEWAY_INSTANCE; default HOST:PORT)",
    )
    parser.add_argument(
        "--mllp-port",
        type=int,
        default=int(os.environ.get("TRIALGUARD_GATEWAY_MLLP_PORT") or 2575),
        help="port of the HL7 v2 MLLP listener on loopback (env TRIALGUARD_GATEWAY_MLLP_PORT; -1: none; "
        "default %(default)s)",
    )
    parser.add_argument(
        "--mllp-host",
        default=os.environ.get("TRIALGUARD_GATEWAY_MLLP_HOST", "127.0.0.1"),
        help="address of the MLLP listener (env TRIALGUARD_GATEWAY_MLLP_HOST; default %(default)s: MLLP carries no "
        "credentials; peers must be in a source's --mllp-allow list, and TLS with client certificates is advised)",
    )
    for option, env, kind, default, what in (
        (
            "--mllp-max-bytes",
            "MLLP_MAX_BYTES",
            int,
            1_048_576,
            "the largest MLLP frame (AR and close beyond)",
        ),
        ("--mllp-idle-timeout", "MLLP_IDLE_TIMEOUT", float, 60.0, "seconds an MLLP frame may take to arrive whole"),
        ("--mllp-max-connections", "MLLP_MAX_CONNECTIONS", int, 32, "MLLP connections at once (more are closed)"),
    ):
        parser.add_argument(
            option,
            type=kind,
            default=kind(os.environ.get(f"TRIALGUARD_GATEWAY_{env}") or default),
            help=f"{what} (env TRIALGUARD_GATEWAY_{env}; default %(default)s)",
        )
    for option, env, what in (
        ("--mllp-tls-cert", "MLLP_TLS_CERT", "PEM certificate of the MLLP listener: TLS instead of plain TCP"),
        ("--mllp-tls-key", "MLLP_TLS_KEY", "PEM private key of that certificate"),
        ("--mllp-tls-client-ca", "MLLP_TLS_CLIENT_CA", "PEM CA whose client certificate every MLLP peer must show"),
    ):
        parser.add_argument(
            option,
            type=Path,
            default=os.environ.get(f"TRIALGUARD_GATEWAY_{env}") or None,
            metavar="FILE",
            help=f"{what} (env TRIALGUARD_GATEWAY_{env})",
        )
    parser.add_argument(
        "--fhir-identifier-system",
        default=os.environ.get("TRIALGUARD_GATEWAY_FHIR_IDENTIFIER_SYSTEM", "urn:trialguard:participant"),
        help="the Observation.subject.identifier.system that carries participant ids (default %(default)s)",
    )
    parser.add_argument(
        "--fhir-patient-reference",
        action="store_true",
        default=os.environ.get("TRIALGUARD_GATEWAY_FHIR_PATIENT_REFERENCE", "") == "1",
        help="also read the participant id from subject.reference Patient/<id> "
        "(env TRIALGUARD_GATEWAY_FHIR_PATIENT_REFERENCE=1)",
    )
    parser.add_argument(
        "--hl7-assigning-authority",
        default=os.environ.get("TRIALGUARD_GATEWAY_HL7_ASSIGNING_AUTHORITY") or None,
        help="the PID-3 assigning authority of participant ids (default: the first PID-3 identifier)",
    )
    add_http_limit_args(parser, "TRIALGUARD_GATEWAY", MAX_BODY_BYTES)
    add_data_dir_arg(parser)
