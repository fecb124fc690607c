"""Settings built once at the edge (the CLI) and passed down; flags also read ``CORRAL_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 3000
    data_dir: Path = Path("./corral-data")
    database_url: str | None = Field(
        default=None, description="postgresql://... to share one database between replicas"
    )
    output_cap: int = Field(default=1 << 20, ge=1024, description="bytes kept per output stream")
    max_upload_bytes: int = Field(
        default=500 << 20, ge=1, description="largest input archive or artifact, in bytes"
    )
    file_ttl: float = Field(
        default=7 * 86400.0, gt=0, description="seconds an uploaded file or artifact is kept"
    )
    reaper_interval: float = Field(default=1.0, gt=0)
    lease_grace: float | None = Field(
        default=None, description="seconds after start before reaping; default one lease period"
    )
    executor_offline_after: float = Field(default=30.0, gt=0)
    sqlite_synchronous: str = Field(default="NORMAL", pattern="^(OFF|NORMAL|FULL|EXTRA)$")
    log_level: str = "info"
    access_log: bool = False
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 key for login JWTs, at least 32 bytes; "
        "unset: a random one kept in the database and shared by replicas",
    )
    admin_email: str | None = Field(default=None, description="first admin user, if none exists")
    admin_password: SecretStr | None = None

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        """A short HMAC key can be brute-forced offline from any one token."""
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("CORRAL_JWT_SECRET must be at least 32 bytes")
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "corral.sqlite3"
