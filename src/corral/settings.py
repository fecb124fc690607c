"""Settings built once at the edge (the CLI) and passed down; flags also read ``CORRAL_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from limits import parse_many
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from corral.domain.retention import DEFAULT_RETENTION, parse_duration

RATE_LIMIT_OFF = "off"  # or an empty value: the limit is not applied at all


def _retention(value: str | float) -> float:
    """``--retention`` / ``CORRAL_RETENTION``: a typo must not start a server that
    deletes every job a few seconds after it ends."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"--retention (CORRAL_RETENTION): {exc}") from None


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 3000
    data_dir: Path = Path("./corral-data")
    database_url: str | None = Field(
        default=None, description="postgresql://... to share one database between replicas"
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="most PostgreSQL connections one replica's pool opens (plus one for "
        "LISTEN); the database needs replicas x (this + 1) of its max_connections",
    )
    database_command_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds one PostgreSQL statement may run before it is cancelled and "
        "its request answers 503 (a lock held too long, a server that stopped answering); "
        "migrations and VACUUM are not bounded",
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain: serve HTTPS (with tls_key)"
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="proxies (comma-separated addresses or networks, '*' for any) whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; the client address the "
        "per-IP limits count is then the one the proxy saw",
    )
    output_cap: int = Field(default=1 << 20, ge=1024, description="bytes kept per output stream")
    max_upload_bytes: int = Field(
        default=500 << 20, ge=1, description="largest input archive or artifact, in bytes"
    )
    file_ttl: float = Field(
        default=7 * 86400.0, gt=0, description="seconds an uploaded file or artifact is kept"
    )
    reaper_interval: float = Field(default=1.0, gt=0)
    retention: Annotated[float, BeforeValidator(_retention)] = Field(
        default=DEFAULT_RETENTION,
        description="how long finished jobs are kept: 30d, 12h, 45m, 90s; 0 keeps for ever",
    )
    retention_interval: float = Field(
        default=60.0, gt=0, description="seconds between two purges (docs/flow-control.md)"
    )
    idempotency_ttl: float = Field(
        default=86400.0, ge=1, description="seconds an Idempotency-Key's first answer is kept"
    )
    lease_grace: float | None = Field(
        default=None,
        description="after a start or a forward clock jump, an expired lease is spared "
        "for its own period, at most this many seconds; default 60",
    )
    executor_offline_after: float = Field(default=30.0, gt=0)
    sqlite_synchronous: str = Field(
        default="FULL",
        pattern="^(FULL|EXTRA)$",
        description="SQLite fsyncs every commit before Corral answers: a 201 survives a crash",
    )
    log_level: str = "info"
    access_log: bool = False
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 key for login JWTs, at least 32 bytes; "
        "unset: a random one kept in the database and shared by replicas",
    )
    admin_email: str | None = Field(default=None, description="first admin user, if none exists")
    admin_password: SecretStr | None = None
    # Rate limits ("100/minute", "5/second", "1000 per hour"; "off" disables): in this
    # process's memory with SQLite, shared by every replica with PostgreSQL.
    rate_limit: str | None = Field(
        default="6000/minute", description="per principal, for every role but worker"
    )
    worker_rate_limit: str | None = Field(
        default=None, description="per worker-role principal; unset: unlimited"
    )
    auth_failure_rate_limit: str | None = Field(
        default="60/minute", description="failed authentications per client IP"
    )
    login_rate_limit: str | None = Field(
        default="10/minute",
        description="failed logins per (email, client IP); past it per email, from any "
        "address, logins to that email are slowed down, never refused",
    )
    login_ip_rate_limit: str | None = Field(
        default="30/minute", description="failed logins per client IP, whatever the email"
    )
    max_json_bytes: int = Field(
        default=4 << 20, ge=1, description="largest request body outside the upload routes"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins allowed to call with credentials (comma-separated); empty: no CORS",
    )

    # --- Bounds on what one caller may hold (issue 11, item 22). A request past one
    # answers 4xx in its dialect's shape; docs/native-api.md, "Bounds", lists them all.
    max_streams_per_principal: int = Field(
        default=32, ge=1, description="live SSE/WebSocket streams one caller may hold open"
    )
    upload_quota_bytes: int = Field(
        default=10 << 30, ge=1, description="bytes of unexpired files one user may own"
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        """A short HMAC key can be brute-forced offline from any one token."""
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("CORRAL_JWT_SECRET must be at least 32 bytes")
        return value

    @field_validator("admin_password")
    @classmethod
    def _admin_password_policy(cls, value: SecretStr | None) -> SecretStr | None:
        """The first admin's password obeys the same rule as every other password."""
        from corral.auth.password_policy import problem

        reason = problem(value.get_secret_value()) if value is not None else None
        if reason is not None:
            raise ValueError(f"CORRAL_ADMIN_PASSWORD: {reason}")
        return value

    @field_validator(
        "rate_limit",
        "worker_rate_limit",
        "auth_failure_rate_limit",
        "login_rate_limit",
        "login_ip_rate_limit",
    )
    @classmethod
    def _rate(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A typo must not start a server that silently limits nothing (or everything)."""
        text = (value or "").strip()
        if text.lower() in ("", RATE_LIMIT_OFF):
            return None
        name = f"CORRAL_{(info.field_name or '').upper()}"
        try:
            parsed = parse_many(text)
        except ValueError:
            raise ValueError(
                f"{name} must be a rate such as '100/minute' or 'off', not {text!r}"
            ) from None
        if len(parsed) != 1 or parsed[0].amount < 1:
            raise ValueError(f"{name} must be one positive rate such as '100/minute', not {text!r}")
        return text

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """The environment gives one string: ``https://a.example,https://b.example``."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        """Browsers send credentials (the login cookie) cross-origin only to named origins.

        ``*`` with credentials would let any site act as the signed-in user, and an
        origin with a path or trailing slash never equals a browser's ``Origin``.
        """
        for origin in value:
            if "*" in origin:
                raise ValueError("CORRAL_CORS_ORIGINS must name origins; '*' is refused")
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
                raise ValueError(
                    f"CORRAL_CORS_ORIGINS entries look like https://host[:port], not {origin!r}"
                )
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        """A certificate without its key (or the reverse) would serve plain HTTP by mistake."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both or neither")
        return self

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "corral.sqlite3"
