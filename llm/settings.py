"""Typed settings for the whole app, read once from env vars and .streamlit/secrets.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from llm.retrieval.modes import SearchMode

DEFAULT_SECRETS_FILE = Path(".streamlit/secrets.toml")

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
# The offline default, chosen by `docqa eval --answers` (see the README's quality table).
DEFAULT_LOCAL_MODEL = "qwen2.5-1.5b"
DEFAULT_OPENAI_CHAT_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"

# Dollars per million tokens (input, output); local and extractive answers cost nothing.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-mini": (0.25, 2.00),
}


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every knob of DocQA; env vars use the prefix DOCQA_ except the providers' own names."""

    model_config = SettingsConfigDict(
        env_prefix="DOCQA_",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    data_dir: Path = Path("data")
    chroma_url: str | None = Field(
        default=None, description="http://host:port of a `chroma run` server (server mode)"
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="accounts, collections, conversations and the spend ledger: a SQLAlchemy URL "
        "(postgresql+psycopg://…); unset, a SQLite file in the data dir. Set with chroma_url, "
        "it also holds the index's catalog, keyword chunks, original files and traces, so "
        "replicas on several machines serve one corpus",
    )
    accounts_signup: bool = Field(
        default=False, description="let visitors create their own account on the sign-in page"
    )
    accounts_sso: bool = Field(
        default=False,
        description="offer single sign-on with Streamlit's st.login (the identity provider is "
        "configured in .streamlit/secrets.toml [auth]); a first sign-on makes an account named "
        "after the e-mail address",
    )
    session_days: int = Field(default=30, ge=1, description="how long a sign-in lasts")

    chunk_size: int = Field(default=1000, ge=100, le=8000)
    chunk_overlap: int = Field(default=150, ge=0, le=2000)
    top_k: int = Field(default=5, ge=1, le=50)
    search_mode: SearchMode = "hybrid"
    low_relevance_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description=(
            "below this cosine similarity of the best passage, a question reads as off-topic;"
            " unset, the threshold calibrated for the index's embedder applies"
        ),
    )
    max_upload_mb: int = Field(default=50, ge=1)
    tesseract_cmd: str = Field(
        default="tesseract",
        description="the Tesseract command that reads scanned PDF pages (OCR): on PATH, or a path",
    )
    ocr_languages: str = Field(
        default="eng", description="Tesseract languages for OCR, several joined by + (eng+deu)"
    )

    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str = LOCAL_EMBEDDING_MODEL

    llm_provider: Literal["auto", "openai", "local", "extractive"] = "auto"
    llm_model: str = ""
    local_model: str = Field(
        default=DEFAULT_LOCAL_MODEL,
        description="smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b, or the path of any GGUF chat model",
    )
    models_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "docqa" / "models",
        description="where model files shipped in parts are joined, once, for llama.cpp to load "
        "(and, on Intel AMX CPUs, the Q8_0 copy it reads fastest and the check that it runs)",
    )
    evidence_tokens: int = Field(
        default=500,
        ge=0,
        description="tokens of passage text sent to the model, the most relevant sentences first; "
        "0 sends the whole passages",
    )
    evidence_bias: float = Field(
        default=1.5,
        ge=0.0,
        le=10.0,
        description="added to the logit of each token of the evidence while the local model "
        "answers; 0 turns it off",
    )
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    max_answer_tokens: int = Field(default=256, ge=16, le=8192)
    context_window: int = Field(
        default=0, ge=0, description="model context in tokens; 0 means the model's known default"
    )

    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=_alias("DOCQA_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=_alias("DOCQA_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )

    admin_password: SecretStr | None = None

    langsmith_tracing: bool = Field(
        default=False, validation_alias=_alias("DOCQA_LANGSMITH_TRACING", "LANGSMITH_TRACING")
    )
    langsmith_api_key: SecretStr | None = Field(
        default=None, validation_alias=_alias("DOCQA_LANGSMITH_API_KEY", "LANGSMITH_API_KEY")
    )
    langsmith_project: str = Field(
        default="docqa", validation_alias=_alias("DOCQA_LANGSMITH_PROJECT", "LANGSMITH_PROJECT")
    )
    langsmith_endpoint: str | None = Field(
        default=None, validation_alias=_alias("DOCQA_LANGSMITH_ENDPOINT", "LANGSMITH_ENDPOINT")
    )

    public_url: str = Field(
        default="http://localhost:8501",
        description="where users reach the app; the base of in-app trace links (DOCQA_PUBLIC_URL)",
    )

    rate_limit_capacity: int = Field(default=5, ge=1)
    rate_limit_per_minute: float = Field(default=5.0, gt=0)
    # Per client address (tabs, reloads and sessions of one browser or network share it) and for
    # the whole app, so opening a new tab does not buy a fresh bucket.
    client_rate_limit_capacity: int = Field(default=10, ge=1)
    client_rate_limit_per_minute: float = Field(default=6.0, gt=0)
    global_rate_limit_capacity: int = Field(default=60, ge=1)
    global_rate_limit_per_minute: float = Field(default=30.0, gt=0)
    trusted_proxy_header: str | None = Field(
        default=None,
        description="header a trusted reverse proxy sets to the client address, e.g. "
        "X-Forwarded-For (DOCQA_TRUSTED_PROXY_HEADER); unset: the connection's own address",
    )
    max_question_chars: int = Field(default=2000, ge=10)
    cap_daily_usd: float = Field(default=5.0, ge=0)
    cap_weekly_usd: float = Field(default=20.0, ge=0)
    cap_monthly_usd: float = Field(default=50.0, ge=0)
    prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    cache_ttl_seconds: int = Field(default=3600, ge=0)

    secrets_file: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SecretsTomlSource(settings_cls, init_settings))

    @field_validator(
        "chroma_url",
        "database_url",
        "openai_api_key",
        "openai_base_url",
        "admin_password",
        "langsmith_api_key",
        "langsmith_endpoint",
        "trusted_proxy_header",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """An empty value in secrets.toml or the environment means "not set"."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _chunks_overlap_less_than_they_hold(self) -> Settings:
        if problem := chunking_problem(self.chunk_size, self.chunk_overlap):
            raise ValueError(problem)
        return self

    @property
    def openai_configured(self) -> bool:
        return bool(self.openai_api_key and self.openai_api_key.get_secret_value())

    @property
    def langsmith_enabled(self) -> bool:
        return bool(
            self.langsmith_tracing
            and self.langsmith_api_key
            and self.langsmith_api_key.get_secret_value()
        )

    def price_per_million(self, model: str) -> tuple[float, float]:
        """Input and output dollars per million tokens; unknown models are priced as the dearest."""
        if model in self.prices:
            return self.prices[model]
        return max(self.prices.values(), default=(0.0, 0.0))


class SecretsTomlSource(PydanticBaseSettingsSource):
    """Flat keys from Streamlit's secrets.toml: `OPENAI_API_KEY`, `admin_password`, ..."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._init_settings = init_settings

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._init_settings().get("secrets_file") or DEFAULT_SECRETS_FILE
        path = Path(path)
        if not path.is_file():
            return {}
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
        fields = self.settings_cls.model_fields
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.lower().removeprefix("docqa_")
            if name in fields and name != "secrets_file":
                values[name] = value
        return values


def load_settings(**overrides: Any) -> Settings:
    """Settings from (highest first) overrides, env vars, secrets.toml, defaults."""
    return Settings(**overrides)


def chunking_problem(chunk_size: int, chunk_overlap: int) -> str | None:
    """Why chunks of this size and overlap cannot be made, or None when they can."""
    if chunk_overlap >= chunk_size:
        return (
            f"the chunk overlap ({chunk_overlap}) must be smaller than the chunk size "
            f"({chunk_size})"
        )
    return None


def field_bounds(name: str) -> tuple[int, int]:
    """A numeric setting's allowed range, as its Field declares it, for widgets to reuse."""
    low = high = None
    for rule in Settings.model_fields[name].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    if low is None or high is None:
        raise ValueError(f"the setting {name} declares no range")
    return int(low), int(high)
