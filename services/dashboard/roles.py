"""Who may do what on the deviation dashboard: roles, review actions and one permission table.

Every decision is read from ``GRANTS``, a table of role → what that role may do, so a reviewer
of this module (or an auditor) checks one table instead of following branches. The functions
below only look things up in it; none of them does I/O.

Site scoping: a ``site`` user works for one investigational site and sees and comments on only
that site's findings. Every other role works across all sites.

The same table judges reviews twice: when a user asks (``check_may_review``), and when the read
model folds a ``FindingReviewed`` from Kafka (``check_review_authority``), because a review on the
topic may not have come through the dashboard at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from contracts import FindingReviewed, ReviewAction


class Role(StrEnum):
    """The role a dashboard user holds in a study; one per study (``User.studies``)."""

    MONITOR = "monitor"
    DATA_MANAGER = "data-manager"
    SITE = "site"
    AUDITOR = "auditor"
    ADMIN = "admin"


Action = ReviewAction
"""A step of the review workflow of a finding: the contract's own enum, so the two never drift."""


@dataclass(frozen=True)
class User:
    """A dashboard user as the rest of the dashboard sees it: never with a password or token.

    Roles are per study: ``studies`` lists the user's ``StudyRole`` in each study they work on.
    A request works on one study at a time; ``in_study`` gives the user as that study sees them,
    with ``role`` and ``site`` of that study, which every check below reads. A user has no
    business in a study that ``studies`` does not name.

    Attributes:
        name: The login name, also the ``actor`` of the reviews the user publishes.
        role: What the user may do (see ``GRANTS``) in ``study``.
        site: The site id of a ``site`` user; None for every other role.
        study: The study ``role`` and ``site`` belong to (None: the user as added, before a
            study was chosen; see ``UserStore``).
        studies: The user's role in each study, by study id.
    """

    name: str
    role: Role
    site: str | None
    study: str | None = field(default=None, compare=False)
    studies: tuple[StudyRole, ...] = field(default=(), compare=False)

    def in_study(self, study_id: str) -> User | None:
        """The user with their role and site in ``study_id``, or None when they have none there."""
        for held in self.studies:
            if held.study_id == study_id:
                return replace(self, role=held.role, site=held.site, study=study_id)
        return None

    def study_ids(self) -> tuple[str, ...]:
        """The studies the user has a role in, by study id."""
        return tuple(sorted(held.study_id for held in self.studies))


@dataclass(frozen=True)
class StudyRole:
    """A user's role (and, for a ``site`` user, site) in one study."""

    study_id: str
    role: Role
    site: str | None = None


@dataclass(frozen=True)
class Grant:
    """What one role may do.

    Attributes:
        review: The review actions the role may take.
        own_site_only: The role sees and reviews only the findings of the user's own site.
        manage_users: The role may add users and issue their tokens.
        read_review_history: The role may read who reviewed what, and when.
    """

    review: frozenset[Action]
    own_site_only: bool = False
    manage_users: bool = False
    read_review_history: bool = True


GRANTS: Final[Mapping[Role, Grant]] = MappingProxyType(
    {
        Role.MONITOR: Grant(review=frozenset({Action.ACKNOWLEDGE, Action.COMMENT})),
        Role.DATA_MANAGER: Grant(review=frozenset(Action)),
        Role.SITE: Grant(review=frozenset({Action.COMMENT}), own_site_only=True),
        # Auditors read everything and change nothing: an audit must not alter what it audits.
        Role.AUDITOR: Grant(review=frozenset()),
        # Administrators manage accounts, not findings: separation of duties, so no one can
        # create a reviewer account and then review with it.
        Role.ADMIN: Grant(review=frozenset(), manage_users=True),
    }
)
"""The permission table: role → what the role may do. Every check below reads only this."""


class PermissionDeniedError(Exception):
    """A user asked for something their role does not allow; the message names role and action."""


def may_read_site(user: User, site_id: str) -> bool:
    """Whether the user may see the findings (and their reviews) of a site.

    Args:
        user: The user asking.
        site_id: The site of the findings.

    Returns:
        True for every role that is not limited to its own site; for a site user, only when
        ``site_id`` is the user's site.
    """
    if not GRANTS[user.role].own_site_only:
        return True
    # A site user without a site (which UserStore refuses to create) sees nothing, not everything.
    return user.site is not None and user.site == site_id


def may_review(user: User, action: Action, site_id: str) -> bool:
    """Whether the user may take a review action on a finding of a site.

    Args:
        user: The reviewer.
        action: The review action asked for.
        site_id: The site of the finding reviewed.

    Returns:
        True when the role's grant includes the action and the user may read the finding's site.
    """
    return action in GRANTS[user.role].review and may_read_site(user, site_id)


def may_manage_users(user: User) -> bool:
    """Whether the user may add users and issue tokens (administrators only)."""
    return GRANTS[user.role].manage_users


def may_read_review_history(user: User) -> bool:
    """Whether the user may read the review history of findings; auditors included.

    A site user's history is still limited to the findings of their site: combine this with
    ``may_read_site`` for each finding shown.
    """
    return GRANTS[user.role].read_review_history


def check_may_review(user: User, action: Action, site_id: str) -> None:
    """Guard a review action: return only when ``may_review`` allows it.

    Raises:
        PermissionDeniedError: the role does not allow the action, or a site user asked to review
            a finding of another site. The message names the role and the action.
    """
    if action not in GRANTS[user.role].review:
        allowed = ", ".join(sorted(GRANTS[user.role].review)) or "none"
        raise PermissionDeniedError(
            f"role {user.role.value!r} may not {action.value} findings (allowed review actions: {allowed})"
        )
    if not may_read_site(user, site_id):
        raise PermissionDeniedError(
            f"role {user.role.value!r} of site {user.site!r} may not {action.value} findings of site {site_id!r}"
        )


class ReviewAuthorityError(Exception):
    """A review on the topic that its claimed role could not have taken; the message says why."""


def check_review_authority(review: FindingReviewed, finding_site: str) -> None:
    """Guard the fold: return only when the review's own claims allow it on this finding.

    The read model applies a review to a finding's status only after this check. It uses what the
    review claims (its role) and what the read model knows (the finding's site), so a review that
    reached the topic without the dashboard (a forged or buggy producer) changes nothing unless its
    claims pass the same table ``check_may_review`` uses. Whether the actor really holds that role
    (and, for a ``site`` user, that site) at ``reviewed_at`` is a check of the user directory;
    it belongs beside this one.

    Args:
        review: The review as read from the finding-reviews topic.
        finding_site: The site of the finding reviewed, from the deviations topic.

    Raises:
        ReviewAuthorityError: the role is not a dashboard role, the role may not take the action,
            or the review names another site than the finding's.
    """
    try:
        role = Role(review.role)
    except ValueError:
        raise ReviewAuthorityError(f"role {review.role[:40]!r} is not a dashboard role") from None
    action = Action(review.action.value)
    if action not in GRANTS[role].review:
        raise ReviewAuthorityError(f"role {role.value!r} may not {action.value} findings")
    if review.site_id != finding_site:
        raise ReviewAuthorityError(
            f"the review names site {review.site_id[:40]!r}, the finding is of site {finding_site[:40]!r}"
        )
