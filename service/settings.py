"""Service settings, read from ``LOSSGRAD_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything an operator can set; each field is ``LOSSGRAD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LOSSGRAD_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    max_body_bytes: int = Field(default=64 * MIB, ge=1024)
    max_elements: int = Field(default=10_000_000, ge=1)
    max_classes: int = Field(default=100_000, ge=1)
    max_in_flight: int = Field(default=64, ge=1)
    offload_min_elements: int = Field(
        default=20_000,
        ge=0,
        description="Requests with at least this many elements run off the event loop.",
    )
    # Two, whatever the machine: parsing and validation hold the GIL, so further
    # threads in one worker mostly add memory (under load on 2 cores, 32 threads
    # served no more than 2 did); more cores want more workers.
    compute_threads: int = Field(
        default=2,
        ge=1,
        description="Most large requests parsed and computed at once, per worker.",
    )
    graceful_timeout: float = Field(default=30.0, gt=0)
    # Off unless asked for: even with no OpenTelemetry SDK configured, FastAPI
    # looks up the global providers on every request (9 of the 177 us of a
    # 64-element request, measured in-process).
    opentelemetry: bool = Field(
        default=False,
        description=(
            "Let FastAPI trace and measure requests with OpenTelemetry (FastAPI "
            "releases that have it), once an OpenTelemetry SDK is configured."
        ),
    )
    tune_malloc: bool = Field(
        default=True,
        description=(
            "Keep large arrays in one heap between requests and threads (glibc only)."
        ),
    )

    # Secret, so that a repr or a dump of the settings never shows a key.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: object) -> object:
        # Environment variables hold one string: "key-a,key-b".
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
