"""Contract v1: the access log — who changed which credential or account, and when.

Every change to a dashboard user, an API token or a gateway source is one ``AccessChanged`` event
on ``<namespace>.<study>.access-log`` (one partition, so the log has one order; key = the subject's
name). The event names the operator, the action, the subject, and the subject's role, site and
state after the change. It never carries a secret: no password, no hash, no token or key, not even
a digest of one — only a token's public id.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@:-]+$")]
"""A user, source or operator name (user names never hold ``:``; source names may)."""

RoleName = Literal["monitor", "data-manager", "site", "auditor", "admin"]


class AccessAction(StrEnum):
    """What was done to an account or a credential."""

    USER_ADDED = "user-added"
    """Added without a password; a set-password link was issued."""
    USER_PASSWORD_LINK_ISSUED = "user-password-link-issued"  # noqa: S105 - an action name
    USER_PASSWORD_SET = "user-password-set"  # noqa: S105 - an action name
    """The user chose their password with a set-password link."""
    USER_PASSWORD_CHANGED = "user-password-changed"  # noqa: S105 - an action name
    """An operator set the password (a reset); the user's sessions end."""
    USER_DISABLED = "user-disabled"
    USER_ENABLED = "user-enabled"
    USER_REMOVED = "user-removed"
    USER_ROLE_CHANGED = "user-role-changed"
    USER_LOGGED_OUT = "user-logged-out"
    TOKEN_ISSUED = "token-issued"  # noqa: S105 - an action name
    TOKEN_REVOKED = "token-revoked"  # noqa: S105 - an action name
    SOURCE_ADDED = "source-added"
    SOURCE_KEY_ROTATED = "source-key-rotated"
    SOURCE_DISABLED = "source-disabled"
    SOURCE_ENABLED = "source-enabled"
    SOURCE_REMOVED = "source-removed"
    SOURCE_CONFIGURED = "source-configured"
    """How a source's messages are read changed: its time zone, or strict against filtering
    results the study does not use (the settings are in the sources store)."""
    SOURCE_MLLP_ALLOWED = "source-mllp-allowed"
    """The networks a source may send HL7 v2 over MLLP from were set (the networks are in the
    sources store; the event says that they changed, by whom)."""


SOURCE_ACTIONS: Final = frozenset(a for a in AccessAction if a.value.startswith("source-"))
TOKEN_ACTIONS: Final = frozenset({AccessAction.TOKEN_ISSUED, AccessAction.TOKEN_REVOKED})


class AccessChanged(BaseModel):
    """One change to who may use TrialGuard, by a named operator, at a UTC time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: Literal["AccessChanged"] = "AccessChanged"
    schema_version: Literal[1] = 1
    change_id: uuid.UUID = Field(description="Unique id of this change")
    study_id: str
    action: AccessAction
    operator: Name = Field(description="Who made the change: an OS user (via the CLI) or a dashboard user")
    via: Literal["cli", "dashboard"] = Field(description="cli: operator is an OS user; dashboard: a dashboard user")
    subject_kind: Literal["user", "source"]
    subject: Name = Field(description="The user or source changed; also the record key")
    generation: str | None = Field(
        default=None,
        max_length=64,
        description="The user's random id, new on each add: a user removed and added again is another generation",
    )
    role: RoleName | None = Field(default=None, description="A user's role after the change")
    site: Name | None = Field(default=None, description="A site user's site, or a source's site, after the change")
    enabled: bool = Field(description="Whether the subject may sign in or send after the change")
    token_id: str | None = Field(
        default=None, max_length=32, description="The public id of the token (never the token)"
    )
    token_expires_at: AwareDatetime | None = None
    changed_at: AwareDatetime = Field(description="When the change was made, in UTC")

    @field_validator("changed_at", "token_expires_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # 21 CFR 11.10(e): audit trail entries are time-stamped; one zone for all of them.
        if value is not None and value.utcoffset() != dt.timedelta(0):
            raise ValueError("must be in UTC (offset +00:00)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        is_source_action = self.action in SOURCE_ACTIONS
        if is_source_action != (self.subject_kind == "source"):
            raise ValueError(f"action {self.action.value} is not about a {self.subject_kind}")
        if self.subject_kind == "user" and (self.role is None or self.generation is None):
            raise ValueError("a user's change names the user's role and generation")
        if (self.action in TOKEN_ACTIONS) != (self.token_id is not None):
            raise ValueError("token_id is given for token actions, and only for them")
        return self
