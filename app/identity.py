"""Who is asking: the signed-in user, else the browser's own id (a cookie, shared by its tabs and
reloads), and the client's address."""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import streamlit as st

from llm.access.accounts import AccountError, Accounts, User
from llm.access.admin_auth import AdminGate, AuthState
from llm.settings import Settings

COOKIE = "docqa_client"
COOKIE_DAYS = 365
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
SESSION_COOKIE = "docqa_session"
SIGNED_IN_STATE = (
    "messages",
    "conversation_id",
    "last_prompt",
    "search_in",
    "search_known",
    "upload_to",
    "admin_auth",
)
_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def signed_in_user(accounts: Accounts, single_sign_on: bool = False) -> User | None:
    """The user this session is signed in as: by this session's token, or by the sign-in
    cookie a reload or another tab brings (valid only while the database still holds it), or,
    with `single_sign_on`, by the identity Streamlit's st.login brought back."""
    token = st.session_state.get("session_token")
    if token is None:
        cookie = st.context.cookies.get(SESSION_COOKIE)
        token = cookie if isinstance(cookie, str) and _SESSION_TOKEN.fullmatch(cookie) else None
    user = accounts.user_for(token)
    if user is None:
        st.session_state.pop("session_token", None)
        if single_sign_on:
            user = _signed_on(accounts)
    else:
        st.session_state.session_token = token
    st.session_state.user = user
    return user


def _signed_on(accounts: Accounts) -> User | None:
    """The account of whoever the identity provider signed in, with a DocQA sign-in of its own
    so the rest of the app treats them like anyone signed in; None without a verified address."""
    if not st.user.get("is_logged_in"):
        return None
    email = st.user.get("email")
    if not isinstance(email, str) or st.user.get("email_verified") is False:
        st.session_state.sign_in_error = (
            "Your identity provider did not vouch for an e-mail address: DocQA cannot tell "
            "which account is yours."
        )
        return None
    try:
        attempt = accounts.sign_in_verified(email)
    except AccountError as refused:
        st.session_state.sign_in_error = str(refused)
        return None
    if attempt.token:
        keep_signed_in(attempt.token)
    return attempt.user


def keep_signed_in(token: str) -> None:
    """Remember a new sign-in in this session; the cookie is written on the next run."""
    st.session_state.session_token = token
    st.session_state.session_cookie = token


def forget_sign_in() -> None:
    """Forget this session's sign-in; the cookie is cleared on the next run."""
    st.session_state.pop("session_token", None)
    st.session_state.user = None
    st.session_state.session_cookie = ""


def write_session_cookie(days: int) -> None:
    """Write (or clear) the sign-in cookie a sign-in or sign-out asked for. Done in a run of
    its own: a script element sent just before a rerun may never reach the browser."""
    token = st.session_state.pop("session_cookie", None)
    if token is None:
        return
    age = days * 86400 if token else 0
    _write_cookie(f"{SESSION_COOKIE}={token}; path=/; max-age={age}; SameSite=Strict")


def owner() -> str:
    """The key answers, conversations and uploads are kept under: the user's, or the browser's."""
    user = st.session_state.get("user")
    return user.owner if isinstance(user, User) else browser_owner()


def account_box(accounts: Accounts, user: User) -> None:
    """Who is signed in, and the button that signs out."""
    st.caption(f":material/person: Signed in as **{user.name}**")
    st.button(
        "Sign out", on_click=_sign_out, args=(accounts,), icon=":material/logout:", key="sign_out"
    )


def _sign_out(accounts: Accounts) -> None:
    accounts.sign_out(st.session_state.get("session_token"))
    forget_sign_in()
    # Else the provider's identity, still held in Streamlit's own cookie, signs them in again.
    st.session_state.leave_single_sign_on = bool(st.user.get("is_logged_in"))
    # What this session showed and chose was this user's, and so is an admin unlock made in it:
    # the next one to sign in here starts afresh.
    for key in SIGNED_IN_STATE:
        st.session_state.pop(key, None)


def end_single_sign_on() -> None:
    """After a sign-out, end the identity provider's sign-in too (a new page load follows)."""
    if st.session_state.pop("leave_single_sign_on", False):
        st.logout()


def signed_in_admin() -> bool:
    user = st.session_state.get("user")
    return isinstance(user, User) and user.is_admin


def is_admin(settings: Settings) -> bool:
    """A signed-in admin user, or a session the admin password unlocked."""
    if signed_in_admin():
        return True
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    auth = st.session_state.get("admin_auth")
    return isinstance(auth, AuthState) and AdminGate(password).is_unlocked(auth)


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
    _write_cookie(f"{COOKIE}={token}; path=/; max-age={COOKIE_DAYS * 86400}; SameSite=Strict")


def _write_cookie(cookie: str) -> None:
    # Our own fixed script, not untrusted text; SameSite keeps other sites from sending it.
    st.html(
        f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True
    )
