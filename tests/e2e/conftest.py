"""The browser fixtures (Chromium, real `streamlit run` servers) and the failure report hook."""

from tests.browser_fixtures import (  # noqa: F401  (fixtures and a hook, found by pytest by name)
    browser,
    chat_server,
    client_limited_server,
    limited_server,
    pytest_runtest_makereport,
)
