"""DocQA entry point: page config, who is signed in, and navigation between the app's pages."""

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from app import identity, indexing, resources

st.set_page_config(page_title="DocQA", page_icon="📚", layout="wide")
settings = resources.settings()
try:
    accounts = resources.accounts(settings)
except SQLAlchemyError as failed:
    # Not the error's text: it may carry the database's address and user.
    st.error(
        f"The database of accounts and conversations cannot be opened "
        f"({type(failed).__name__}). Check `DOCQA_DATABASE_URL` and that its server is "
        "running, then reload.",
        icon=":material/database_off:",
    )
    st.stop()
# Every page knows whose browser this is (and gives a new browser its id cookie).
identity.browser_owner()
identity.end_single_sign_on()
user = identity.signed_in_user(accounts, settings.accounts_sso)
identity.write_session_cookie(settings.session_days)

admin_page = st.Page("app/admin.py", title="Admin", icon=":material/admin_panel_settings:")
if user is None and (settings.accounts_sso or accounts.any_users()):
    # Accounts exist (or come with single sign-on): nothing but the sign-in page until someone
    # signs in, and the Admin page behind its own password (whoever holds it may have no account).
    pages = [
        st.Page("app/sign_in.py", title="Sign in", icon=":material/login:", default=True),
        admin_page,
    ]
else:
    with st.sidebar:
        if user is not None:
            identity.account_box(accounts, user)
        # Every page shows how far background indexing is (and starts the worker).
        indexing.status(settings)
    pages = [
        st.Page("app/chat.py", title="Chat", icon=":material/forum:", default=True),
        admin_page,
        st.Page("app/traces.py", title="Traces", icon=":material/timeline:", url_path="traces"),
    ]
st.navigation(pages).run()
