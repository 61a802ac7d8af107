"""Process settings: the one pydantic-settings class for every ``LABSWARM_*`` variable a
labswarm process reads (the CLI, the server, the agents, the memory).

Read once per process with :func:`get_settings` and passed down; no other module reads
``os.environ`` for a ``LABSWARM_*`` process setting. An explicit argument (a ``--memory``
flag, a ``get_store(target)``) always wins over the environment.

The table of every variable, with its default, is docs/settings.md (one place;
``tests/test_docs.py`` checks it names every field below). Run variables are a different
thing: ``LABSWARM_TIME_BUDGET``, ``LABSWARM_DEVICE``, ``LABSWARM_THREADS`` are what labswarm
*sets* for each run it starts and a task's program reads (docs/tasks.md).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOME = ".labswarm"
DEFAULT_MAX_TASKS = 64  # see memory/_tasks.py for what one task costs
WriteMode = Literal["token", "open", "disabled"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0 and anything else."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


class UnsafeSettings(ValueError):
    """The settings would expose writes to the network without a token."""


class Settings(BaseSettings):
    """Every ``LABSWARM_*`` process setting. Each field can be set as ``LABSWARM_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LABSWARM_", extra="ignore")

    # -- memory ------------------------------------------------------------------
    memory: str | None = Field(
        default=None,
        description="store: a directory, sqlite:///, postgresql://...?chroma=..., http(s)://",
    )
    home: Path = Field(
        default=Path(DEFAULT_HOME), description="embedded store directory when none is named"
    )
    chroma_url: str | None = Field(
        default=None, description="Chroma server URL for a PostgreSQL store without ?chroma="
    )
    embedder: str = Field(default="minilm", description="minilm | hash")
    max_tasks: int = Field(
        default=DEFAULT_MAX_TASKS,
        ge=1,
        le=100_000,
        description="distinct task names one memory accepts; a new one beyond it is refused",
    )
    cache_dir: Path | None = Field(default=None, description="cache for converted LLM weights")

    # -- server and HTTP store -----------------------------------------------------
    token: SecretStr | None = Field(
        default=None, description="bearer token that write endpoints require"
    )
    host: str = Field(default="127.0.0.1", description="address to bind")
    port: int = Field(default=8765, ge=0, le=65535, description="port to bind (0 = any free)")
    open_writes: bool = Field(
        default=False, description="allow writes without a token (loopback addresses only)"
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="larger request bodies get 413"
    )
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"

    # -- runs ----------------------------------------------------------------------
    sandbox: Literal["auto", "off", "require"] = Field(
        default="auto", description="sandbox runs with bubblewrap: auto | off | require"
    )
    trusted_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers besides loopback and its own host "
        "(comma-separated; other Host headers get 400, against DNS rebinding)",
    )

    @field_validator("trusted_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("memory", "chroma_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.token is not None:
            raw = self.token.get_secret_value()
            if not raw.strip():
                raise UnsafeSettings("token: must not be empty (unset it for a read-only server)")
            if raw != raw.strip():
                raise UnsafeSettings(
                    "token: has leading or trailing whitespace (a header value never does)"
                )
        if self.token is not None and self.open_writes:
            raise UnsafeSettings("open_writes: cannot be combined with a token")
        if self.open_writes and not is_loopback(self.host):
            raise UnsafeSettings(
                f"host: refusing to bind {self.host!r} (beyond loopback) with writes enabled "
                "and no token; set LABSWARM_TOKEN / --token-file, or bind 127.0.0.1"
            )
        return self

    @property
    def write_mode(self) -> WriteMode:
        if self.token is not None:
            return "token"
        return "open" if self.open_writes else "disabled"


def get_settings() -> Settings:
    """The settings as the environment says now (entry points call this once and pass the
    result down; it is not cached, so a test's ``monkeypatch.setenv`` is seen)."""
    return Settings()
