"""Bulk review in a dashboard serving two studies, as attacks: a user of study A bulk-reviews
study B's findings by id, by ``?study=`` and with a role only in A. Every batch is refused whole,
nothing published; a user with roles in both acts in the study they ask for, with its role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient

from contracts import FindingReviewed
from services.dashboard.store import Record
from tests.unit.test_dashboard_studies import B_FINDINGS, A, B, _bearer, app  # noqa: F401 - app is the fixture


def _batches(app: Any) -> list[list[FindingReviewed]]:  # noqa: F811
    batches: list[list[FindingReviewed]] = []
    offsets = iter(range(10**6))

    async def publish_batch(reviews: Sequence[FindingReviewed]) -> None:
        batches.append(list(reviews))
        for review in reviews:
            store = app.state.stores[review.study_id]
            record = Record(store.topics.finding_reviews, 0, next(offsets), 0, review.model_dump_json().encode())
            app.state.live.applied(store.apply([record]))

    app.state.publish_batch = publish_batch
    return batches


def _bulk(app: Any, user: str, query: str = "", **body: Any) -> Any:  # noqa: F811
    return TestClient(app).post(f"/api/bulk-reviews{query}", json=body, headers=_bearer(app, user))


def test_a_user_of_study_a_cannot_bulk_review_study_bs_findings(app: Any) -> None:  # noqa: F811
    batches = _batches(app)
    answer = _bulk(app, "dana", action="acknowledge", finding_ids=B_FINDINGS)
    assert answer.status_code == 403
    assert answer.json()["findings"] == {"not found, or not of your site": B_FINDINGS}
    assert _bulk(app, "dana", f"?study={B}", action="acknowledge", finding_ids=B_FINDINGS).status_code == 404
    assert batches == []


def test_a_user_with_roles_in_both_acts_in_the_study_asked_with_its_role(app: Any) -> None:  # noqa: F811
    batches = _batches(app)
    # "both" is a data manager of A and a monitor of B: B's role may acknowledge, not resolve.
    refused = _bulk(app, "both", f"?study={B}", action="resolve", reason="data_corrected", finding_ids=B_FINDINGS)
    assert refused.status_code == 403
    answer = _bulk(app, "both", f"?study={B}", action="acknowledge", finding_ids=B_FINDINGS)
    assert answer.status_code == 201, answer.text
    assert [{(r.study_id, r.role) for r in batch} for batch in batches] == [{(B, "monitor")}]
    assert sorted(str(r.finding_id) for r in batches[0]) == sorted(B_FINDINGS)
