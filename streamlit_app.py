"""DocQA entry point: page config and navigation between the app's pages."""

import streamlit as st

from app import identity, indexing, resources

st.set_page_config(page_title="DocQA", page_icon="📚", layout="wide")
# Every page knows whose browser this is (and gives a new browser its id cookie).
identity.browser_owner()
# Every page shows how far background indexing is (and starts the worker with the first view).
with st.sidebar:
    indexing.status(resources.settings())

pages = [
    st.Page("app/chat.py", title="Chat", icon=":material/forum:", default=True),
    st.Page("app/admin.py", title="Admin", icon=":material/admin_panel_settings:"),
    st.Page("app/traces.py", title="Traces", icon=":material/timeline:", url_path="traces"),
]
st.navigation(pages).run()
