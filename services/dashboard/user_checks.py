"""What a dashboard user's name, site, password and role must be: the checks, before any change.

``services.dashboard.users`` (the user store) applies them and re-exports them.
"""

from __future__ import annotations

import re
from typing import Final

from zxcvbn import zxcvbn

from services.dashboard.credentials import UserError
from services.dashboard.roles import Role

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9._@-]{1,64}")
"""A user name: the same characters as the ``actor`` of a ``FindingReviewed`` event."""

SITE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
"""A site id: the contract's ``Identifier``, as carried by every participant event."""

MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 1_024
"""Long enough for any passphrase; bounds the work one login attempt can ask of the server."""
MIN_PASSWORD_SCORE: Final = 3
"""zxcvbn's score (0-4) a password must reach: 3 is "safely unguessable: moderate protection from
offline slow-hash scenario" (about 10^8 guesses or more), far beyond what the login throttle lets
anyone try online."""
ESTIMATED_CHARS: Final = 100
"""zxcvbn judges this many first characters (its matching is slow on long inputs); the rest can
only make a password stronger."""


def check_password(password: str, name: str = "") -> None:
    """The password rule, the one place that decides whether a new password is acceptable: refuse
    one that is too short, too long, or guessable (zxcvbn, a maintained strength estimator: common
    passwords, dictionary words, repeats, sequences, keyboard patterns, the user's own name).

    Raises:
        UserError: saying why, with zxcvbn's advice; never quoting the password.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password is shorter than {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    estimate = zxcvbn(password[:ESTIMATED_CHARS], user_inputs=[name, "trialguard", "dashboard"])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join([feedback["warning"], *feedback["suggestions"]]).strip()
        raise UserError(
            f"the password is too easy to guess (strength {estimate['score']} of 4, at least {MIN_PASSWORD_SCORE} "
            f"needed). {advice or 'Add another word or two. Uncommon words are better.'}"
        )


def check_role_and_site(role: Role | str, site: str | None) -> Role:
    """The role, checked, with the site it needs (a site user) or must not have (every other role).

    Raises:
        UserError: an unknown role, a site missing or given wrongly, a bad site id.
    """
    try:
        checked = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {str(role)[:40]!r}: one of {roles}") from None
    if checked is Role.SITE and site is None:
        raise UserError("a site user needs a site: the site id whose findings they see")
    if checked is not Role.SITE and site is not None:
        raise UserError(f"only a site user has a site; role {checked.value!r} sees every site")
    if site is not None and not SITE_PATTERN.fullmatch(site):
        raise UserError(f"site {site[:80]!r}: 1-64 of A-Z a-z 0-9 _ . : -, starting with a letter or digit")
    return checked
