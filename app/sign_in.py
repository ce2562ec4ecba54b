"""Sign-in page: shown instead of every other page while accounts exist and nobody is signed in."""

from __future__ import annotations

import streamlit as st

from app import identity, resources
from llm.access.accounts import AccountError, Accounts


def sign_in(accounts: Accounts) -> None:
    name = st.session_state.get("sign_in_name", "")
    password = st.session_state.get("sign_in_password", "")
    st.session_state.sign_in_password = ""
    attempt = accounts.sign_in(name, password)
    if attempt.outcome == "signed_in" and attempt.token:
        identity.keep_signed_in(attempt.token)
    elif attempt.outcome == "empty":
        st.session_state.sign_in_error = "Enter your name and password."
    elif attempt.outcome == "locked":
        st.session_state.sign_in_error = (
            f"Too many wrong tries for this name. Wait {attempt.wait_s:.0f} s, then try again."
        )
    else:
        tries = "1 more try" if attempt.tries_left == 1 else f"{attempt.tries_left} more tries"
        st.session_state.sign_in_error = f"Wrong name or password ({tries} before a wait)."


def sign_up(accounts: Accounts) -> None:
    name = st.session_state.get("sign_up_name", "")
    password = st.session_state.get("sign_up_password", "")
    st.session_state.sign_up_password = ""
    try:
        accounts.create(name, password)
    except AccountError as refused:
        st.session_state.sign_up_error = str(refused)
        return
    attempt = accounts.sign_in(name, password)
    if attempt.token:
        identity.keep_signed_in(attempt.token)


settings = resources.settings()
accounts = resources.accounts(settings)

st.title("Sign in to DocQA")
if settings.accounts_sso:
    st.button(
        "Sign in with single sign-on",
        type="primary",
        on_click=st.login,
        icon=":material/key:",
        key="single_sign_on",
    )
    st.caption("Or with a DocQA name and password:")
tabs = ["Sign in", "Create an account"] if settings.accounts_signup else ["Sign in"]
for tab, label in zip(st.tabs(tabs), tabs, strict=True):
    with tab:
        if label == "Sign in":
            with st.form("sign_in"):
                st.text_input("Name", key="sign_in_name", autocomplete="username")
                st.text_input(
                    "Password",
                    type="password",
                    key="sign_in_password",
                    autocomplete="current-password",
                )
                st.form_submit_button(
                    "Sign in",
                    type="secondary" if settings.accounts_sso else "primary",
                    on_click=sign_in,
                    args=(accounts,),
                    icon=":material/login:",
                )
        else:
            with st.form("sign_up"):
                st.text_input("Name", key="sign_up_name", autocomplete="username")
                st.text_input(
                    "Password (at least 8 characters)",
                    type="password",
                    key="sign_up_password",
                    autocomplete="new-password",
                )
                st.form_submit_button(
                    "Create the account",
                    on_click=sign_up,
                    args=(accounts,),
                    icon=":material/person_add:",
                )
            if error := st.session_state.pop("sign_up_error", None):
                st.error(error, icon=":material/block:")
if error := st.session_state.pop("sign_in_error", None):
    st.error(error, icon=":material/block:")
if not settings.accounts_signup:
    st.caption("No account yet? Ask whoever runs this DocQA to make one for you.")
