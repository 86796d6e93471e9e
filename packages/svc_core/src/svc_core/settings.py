"""Typed settings read once from the environment.

A service subclasses :class:`Settings` with its own fields; each field names its variable through
``env(...)``. Bad or missing values fail at start with an error that names the variable, and a
placeholder secret is refused outside development.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

ENVIRONMENTS = ("development", "test", "production")
TRACE_MODES = ("off", "console", "file", "otlp", "memory")
PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "dev-only")


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


def mask_url(value: str) -> str:
    """``scheme://user:password@host`` → ``scheme://***@host``; other strings unchanged."""
    if "@" in value and "://" in value:
        scheme, rest = value.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return value


def env(
    name: str,
    default: Any = dataclasses.MISSING,
    *,
    secret: bool = False,
    masked: bool = False,
    help: str = "",
) -> Any:
    """Declare a settings field read from the environment variable ``name``.

    ``secret``: refused as a placeholder outside development, masked when described;
    ``masked``: only masked when described (long or sensitive values that are not secrets)."""
    metadata = {"env": name, "secret": secret, "masked": masked, "help": help}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple for sequence defaults")
    return dataclasses.field(default=default, metadata=metadata)


def _parse(name: str, raw: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if raw == "":
            return None
        return _parse(name, raw, inner[0])
    if origin is tuple:
        return tuple(_parse(name, part.strip(), args[0]) for part in raw.split(",") if part.strip())
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}: expected a boolean (true/false), got {raw!r}")
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if annotation is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if annotation is Path:
        return Path(raw)
    return raw


@typing.dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(env,))
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Settings:
    """Settings every service shares. Subclass to add a service's own fields.

    A subclass is made a frozen dataclass automatically (do not decorate it again). Its
    ``repr`` is :meth:`describe`'s: a logged settings object or a traceback's locals never show
    a secret, a masked value or a URL's password.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True, repr=False)(cls)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.describe().items())
        return f"{type(self).__name__}({shown})"

    environment: str = env("ENVIRONMENT", "development", help="development, test or production")
    host: str = env("HOST", "127.0.0.1", help="address to bind; 0.0.0.0 in containers")
    port: int = env("PORT", 0, help="port to serve on; 0 means the service's own port")
    log_level: str = env("LOG_LEVEL", "INFO")
    access_log: bool = env("ACCESS_LOG", True, help="one JSON line per request")
    access_log_probes: bool = env(
        "ACCESS_LOG_PROBES", False, help="also log /health, /ready and /metrics requests"
    )
    cors_origins: tuple[str, ...] = env(
        "CORS_ORIGINS", (), help="origins allowed when reached without the gateway; empty: CORS off"
    )
    client_max_size: int = env("CLIENT_MAX_SIZE", 1024 * 1024, help="largest request body, bytes")
    shutdown_timeout: float = env("SHUTDOWN_TIMEOUT", 10.0, help="seconds in-flight requests get")
    uvloop: bool = env("UVLOOP", True, help="run on uvloop when it is installed")
    # Tracing (svc_core.tracing), OpenTelemetry's variable names where they exist
    otel_traces: str = env(
        "OTEL_TRACES", "off", help="off, console, file, otlp (or memory: tests) - traces export"
    )
    otel_exporter_otlp_endpoint: str = env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://localhost:4318",
        help="OTLP/HTTP collector base URL (OTEL_TRACES=otlp); spans go to <url>/v1/traces",
    )
    otel_traces_sampler_arg: float = env(
        "OTEL_TRACES_SAMPLER_ARG",
        1.0,
        help="share of new traces recorded, 0-1 (a caller's sampled flag is followed)",
    )
    otel_traces_file: str = env(
        "OTEL_TRACES_FILE", "var/traces.jsonl", help="where OTEL_TRACES=file appends spans"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Read every field from ``environ`` (default ``os.environ``); ``overrides`` win."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            var = f.metadata.get("env")
            if var is None or var not in source:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise SettingsError(f"{var}: required but not set")
                continue
            values[f.name] = _parse(var, source[var], hints[f.name])
        settings = cls(**values)
        settings.check()
        return settings

    @classmethod
    def variables(cls) -> dict[str, str]:
        """The environment variables this settings class reads, with their help text."""
        return {
            f.metadata["env"]: f.metadata.get("help", "")
            for f in dataclasses.fields(cls)
            if "env" in f.metadata
        }

    def check(self) -> None:
        """Refuse combinations that must not reach production."""
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(f"ENVIRONMENT: expected one of {', '.join(ENVIRONMENTS)}")
        if self.otel_traces not in TRACE_MODES:
            raise SettingsError(f"OTEL_TRACES: expected one of {', '.join(TRACE_MODES)}")
        if not 0.0 <= self.otel_traces_sampler_arg <= 1.0:
            raise SettingsError("OTEL_TRACES_SAMPLER_ARG: expected a ratio between 0 and 1")
        if self.is_development:
            return
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            placeholder = not value or any(m in str(value).lower() for m in PLACEHOLDER_MARKERS)
            if f.metadata.get("secret") and isinstance(value, str) and placeholder:
                raise SettingsError(
                    f"{f.metadata['env']}: a real secret is required outside development"
                )

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")

    def describe(self) -> dict[str, Any]:
        """The settings as loggable values: secrets masked, URLs stripped of passwords."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") or f.metadata.get("masked"):
                value = "***" if value else ""
            elif isinstance(value, str):
                value = mask_url(value)
            elif isinstance(value, Path | tuple):
                value = str(value) if isinstance(value, Path) else list(value)
            out[f.name] = value
        return out
