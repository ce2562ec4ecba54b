"""Who is asking: a browser's own id (a cookie, shared by its tabs and reloads) and its address."""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import streamlit as st

from llm.settings import Settings

COOKIE = "docqa_client"
COOKIE_DAYS = 365
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


def browser_owner() -> str:
    """The key this browser's answers are kept under: a digest of its cookie, so neither the
    trace store nor a page ever holds the cookie itself.

    A browser without the cookie gets a new random one; Streamlit reads cookies only when the
    page connects, so the script that sets it runs once per session until then.
    """
    token = st.context.cookies.get(COOKIE)
    # Not a str outside a real browser session (AppTest has no cookies).
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        token = st.session_state.get("client_token")
        if token is None:
            token = secrets.token_urlsafe(24)
            st.session_state.client_token = token
            _set_cookie(token)
    return "browser:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def client_address(settings: Settings) -> str:
    """The client's network address: the trusted proxy's header when one is configured (its
    last entry, the one that proxy added), else the connection's own address."""
    if settings.trusted_proxy_header:
        forwarded = st.context.headers.get(settings.trusted_proxy_header)
        hops = [hop.strip() for hop in str(forwarded or "").split(",") if hop.strip()]
        if hops:
            return hops[-1]
    address = st.context.ip_address
    # None when the connection's address is unknown (and outside a real browser session).
    return address if isinstance(address, str) and address else "unknown"


def _set_cookie(token: str) -> None:
    # Our own fixed script, not untrusted text; SameSite keeps other sites from sending it.
    cookie = f"{COOKIE}={token}; path=/; max-age={COOKIE_DAYS * 86400}; SameSite=Strict"
    st.html(
        f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True
    )
