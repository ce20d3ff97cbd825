"""What each review action asks for, per kind of finding: its own fields, its reasons from a
controlled list (plus "other", said in words), and whether it makes sense for the kind at all.

A safety alert is never "not a deviation": closing one is not offered and is refused. The reason
published (``FindingReviewed.reason``, free text in the contract) is the chosen reason's words, or
"Other: " and the reviewer's words, so the history reads the same whatever the form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from contracts import ReviewAction

OTHER: Final = "other"


class ReviewFormError(ValueError):
    """A review request that does not fit its action's form; the message is plain words."""


@dataclass(frozen=True)
class Reason:
    """One reason of a controlled list: its code (what a form or the API sends) and its words."""

    code: str
    text: str


TITLES: Final = {
    ReviewAction.ACKNOWLEDGE: "Acknowledge",
    ReviewAction.ASSIGN: "Assign",
    ReviewAction.COMMENT: "Comment",
    ReviewAction.RESOLVE: "Resolve",
    ReviewAction.CLOSE: "Close: not a deviation",
    ReviewAction.REOPEN: "Reopen",
}
"""Each action's name on its button."""

ACTIONS_BY_KIND: Final[Mapping[str, frozenset[ReviewAction]]] = {
    "deviation": frozenset(ReviewAction),
    "alert": frozenset(ReviewAction) - {ReviewAction.CLOSE},
}
"""The actions that make sense for each kind: a safety alert is never "not a deviation"."""

REASONS: Final[Mapping[tuple[ReviewAction, str], tuple[Reason, ...]]] = {
    (ReviewAction.RESOLVE, "deviation"): (
        Reason("data_corrected", "Data corrected at the site"),
        Reason("deviation_reported", "Deviation documented and reported to the sponsor and ethics committee"),
        Reason("corrective_action", "Corrective and preventive action in place (site retrained)"),
        Reason("waiver_on_file", "Sponsor-approved waiver on file"),
    ),
    (ReviewAction.RESOLVE, "alert"): (
        Reason("reported_expedited", "Reported to the sponsor and ethics committee within the expedited timeline"),
        Reason("followed_up", "Followed up to resolution; the participant's course is recorded"),
        Reason("managed_per_protocol", "Managed as the protocol's safety section requires"),
    ),
    (ReviewAction.CLOSE, "deviation"): (
        Reason("entry_error", "Data entry error: the corrected data meets the protocol"),
        Reason("allowed_exception", "Within an exception the protocol allows"),
        Reason("duplicate", "Duplicate of another finding"),
    ),
}
"""The controlled reasons of the actions that need one, per kind; "other" is always offered too."""

FIELDS: Final[Mapping[ReviewAction, tuple[str, ...]]] = {
    ReviewAction.ACKNOWLEDGE: ("comment",),
    ReviewAction.ASSIGN: ("assignee", "comment"),
    ReviewAction.COMMENT: ("comment",),
    ReviewAction.RESOLVE: ("reason", "comment"),
    ReviewAction.CLOSE: ("reason", "comment"),
    ReviewAction.REOPEN: ("comment",),
}
"""The fields each action's form shows, in order."""


def reasons_for(action: ReviewAction, kind: str) -> tuple[Reason, ...]:
    """The controlled reasons of an action for a kind (empty: the action takes no reason)."""
    return REASONS.get((action, kind), ())


def check_action_for_kind(action: ReviewAction, kind: str) -> None:
    """Raises: ReviewFormError when the action makes no sense for the kind (closing a safety alert)."""
    if action not in ACTIONS_BY_KIND.get(kind, frozenset()):
        raise ReviewFormError(
            "A safety alert cannot be closed as not a deviation. Resolve it and give the reason."
            if action is ReviewAction.CLOSE
            else f"A {kind} cannot be given the action {action.value}."
        )


def reason_words(action: ReviewAction, kind: str, code: str | None, other: str | None) -> str | None:
    """The reason to publish: the chosen reason's words, or "Other: …" with the reviewer's words.

    Raises:
        ReviewFormError: no reason where one is needed, a code not on the action's list, or
            "other" without words.
    """
    listed = reasons_for(action, kind)
    code, other = (code or "").strip(), (other or "").strip()
    if not listed:
        if code or other:
            raise ReviewFormError(f"A reason is not asked for to {action.value}: leave it empty.")
        return None
    if not code:
        raise ReviewFormError(f"Choose a reason to {action.value} this finding.")
    if code == OTHER:
        if not other:
            raise ReviewFormError("You chose “other”: say what the reason is.")
        return f"Other: {other}"
    if other:
        raise ReviewFormError("Words for the reason go with “other” only: choose “other”, or clear the text.")
    chosen = next((r for r in listed if r.code == code), None)
    if chosen is None:
        codes = ", ".join([r.code for r in listed] + [OTHER])
        raise ReviewFormError(f"“{code[:40]}” is not a reason to {action.value} this finding; choose one of {codes}.")
    return chosen.text


def plain_problems(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's errors in plain words: "Comment: a comment is required…", never "Value error, …"."""
    said = []
    for error in errors:
        context = error.get("ctx") or {}
        kind = error.get("type")
        if kind == "value_error" and "error" in context:
            message = str(context["error"])
        elif kind == "string_pattern_mismatch":
            message = "use only letters, digits and . _ @ - (a user name)"
        elif kind == "string_too_long":
            message = f"at most {context.get('max_length')} characters"
        elif kind == "string_too_short":
            message = "must not be empty"
        else:
            message = str(error["msg"])
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
        named = f"{where.replace('_', ' ').capitalize()}: {message}" if where else message[:1].upper() + message[1:]
        said.append(named)
    return "; ".join(said) + "."
