"""Every gateway request names its source with ``Authorization: Bearer <API key>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from services.gateway.sources import Source, SourceStore

MAX_KEY_CHARS = 200
"""Longer than any key ``sources add`` makes (43 characters); a longer header is refused unhashed."""


def authenticated_source(request: Request) -> Source:
    """The registered source whose API key the request carries.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` when the header is missing, not a
            bearer key, or the key was never issued.
    """
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    store: SourceStore = request.app.state.sources
    source = store.by_key(key) if scheme.lower() == "bearer" and key and len(key) <= MAX_KEY_CHARS else None
    if source is None:
        request.app.state.metrics.rejections.labels(reason="unauthenticated").inc()
        raise HTTPException(
            status_code=401,
            detail="send Authorization: Bearer <API key> of a registered source (trialguard sources add)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return source


CurrentSource = Annotated[Source, Depends(authenticated_source)]
"""The authenticated source, for an endpoint's signature."""
