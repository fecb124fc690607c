"""`corral server`: the dispatcher on uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from corral.cli.logs import LogFormatOpt, setup_logging


def register(app: typer.Typer) -> None:
    app.command("server")(server)


def server(
    host: str = typer.Option("127.0.0.1", envvar="CORRAL_HOST", help="Address to listen on."),
    port: int = typer.Option(3000, envvar="CORRAL_PORT", help="Port to listen on."),
    data_dir: Path = typer.Option(
        Path("./corral-data"), envvar="CORRAL_DATA_DIR", help="SQLite file and local state."
    ),
    database_url: str | None = typer.Option(
        None, envvar="CORRAL_DATABASE_URL", help="postgresql://... to use PostgreSQL."
    ),
    database_pool_size: int = typer.Option(
        10,
        envvar="CORRAL_DATABASE_POOL_SIZE",
        help="Most PostgreSQL connections this replica opens (plus one for LISTEN).",
    ),
    database_command_timeout: float = typer.Option(
        30.0,
        envvar="CORRAL_DATABASE_COMMAND_TIMEOUT",
        help="Seconds a PostgreSQL statement may run before it is cancelled (answers 503).",
    ),
    tls_cert: Path | None = typer.Option(
        None, envvar="CORRAL_TLS_CERT", help="PEM certificate chain: serve HTTPS (with --tls-key)."
    ),
    tls_key: Path | None = typer.Option(
        None, envvar="CORRAL_TLS_KEY", help="PEM private key of --tls-cert, unencrypted."
    ),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1,::1",
        # uvicorn's own variable too, for setups written for a bare uvicorn.
        envvar=["CORRAL_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"],
        help="Proxies whose X-Forwarded-For/-Proto are believed (addresses or networks, "
        "comma-separated; * for any).",
    ),
    output_cap: int = typer.Option(1 << 20, envvar="CORRAL_OUTPUT_CAP", help="Bytes per stream."),
    lease_grace: float | None = typer.Option(
        None,
        envvar="CORRAL_LEASE_GRACE",
        help="After a start or a forward clock jump, an expired lease is spared for its own "
        "period, at most this many seconds (default: 60).",
    ),
    max_upload_bytes: int = typer.Option(
        500 << 20, envvar="CORRAL_MAX_UPLOAD_BYTES", help="Largest upload or artifact, bytes."
    ),
    file_ttl: float = typer.Option(
        7 * 86400.0, envvar="CORRAL_FILE_TTL", help="Seconds uploads and artifacts are kept."
    ),
    reaper_interval: float = typer.Option(
        1.0, envvar="CORRAL_REAPER_INTERVAL", help="Seconds between reaper passes."
    ),
    retention: str = typer.Option(
        "30d",
        envvar="CORRAL_RETENTION",
        help="How long finished jobs are kept (30d, 12h, 45m, 90s; 0 keeps for ever).",
    ),
    idempotency_ttl: float = typer.Option(
        86400.0,
        envvar="CORRAL_IDEMPOTENCY_TTL",
        help="Seconds an Idempotency-Key's first answer is kept for replays.",
    ),
    log_level: str = typer.Option("info", envvar="CORRAL_LOG_LEVEL"),
    log_format: str = LogFormatOpt,
    access_log: bool = typer.Option(False, envvar="CORRAL_ACCESS_LOG"),
) -> None:
    """Run the dispatcher: HTTP API, OpenAPI docs at /api/docs, metrics, MCP at /mcp."""
    from pydantic import ValidationError

    from corral.api.app import create_app
    from corral.api.serving import StartupFailed, serve
    from corral.mcp.mount import install as install_mcp
    from corral.settings import ServerSettings

    try:
        settings = ServerSettings(
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            database_pool_size=database_pool_size,
            database_command_timeout=database_command_timeout,
            tls_cert=tls_cert,
            tls_key=tls_key,
            forwarded_allow_ips=forwarded_allow_ips,
            output_cap=output_cap,
            log_level=log_level,
            access_log=access_log,
            lease_grace=lease_grace,
            reaper_interval=reaper_interval,
            retention=retention,
            idempotency_ttl=idempotency_ttl,
            max_upload_bytes=max_upload_bytes,
            file_ttl=file_ttl,
        )
    except ValidationError as exc:
        # Secrets and limits come from CORRAL_* too: refuse to start on a bad one.
        typer.echo(f"error: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, log_format)
    try:
        # Binds the port and opens the database before anything else, then says
        # "listening"; returns once stopped (SIGINT, SIGTERM): status 0.
        app = create_app(settings)
        install_mcp(app)  # /mcp: the MCP face (docs/mcp.md)
        serve(app, settings)
    except StartupFailed as exc:  # a busy port, an unreachable database: one line
        logging.getLogger("corral.server").error(str(exc), extra={"action": exc.action})
        raise typer.Exit(1) from None
