"""Executor and token rows <-> domain, shared by both adapters (see ``rows``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from corral.domain.workers import Executor, ExecutorInfo
from corral.store.fleet_port import TokenRecord


def executor_from_row(row: Mapping[str, Any]) -> Executor:
    info = ExecutorInfo(
        executor_id=row["executor_id"],
        principal_id=row["principal_id"],
        hostname=row["hostname"],
        ip=row["ip"],
        cpu_count=row["cpu_count"],
        memory_mb=row["memory_mb"],
        os=row["os"],
        labels=tuple(orjson.loads(row["labels"])),
        concurrency=row["concurrency"],
        metadata=orjson.loads(row["metadata"]),
        cpus=row["cpus"],
        isolation=row["isolation"],
        network_control=bool(row["network_control"]),
    )
    return Executor(
        info=info,
        registered_at=row["registered_at"],
        last_heartbeat=row["last_heartbeat"],
        draining=bool(row["draining"]),
        jobs_completed=row["jobs_completed"],
        reported_status=row["reported_status"],
        registered=bool(row["registered"]),
    )


def executor_params(info: ExecutorInfo) -> tuple[Any, ...]:
    """What an executor says about itself, in the column order both upserts use."""
    return (
        info.executor_id,
        info.principal_id,
        info.hostname,
        info.ip,
        info.cpu_count,
        info.memory_mb,
        info.os,
        orjson.dumps(list(info.labels)).decode(),
        info.concurrency,
        orjson.dumps(info.metadata).decode(),
    )


def executor_placement_params(info: ExecutorInfo) -> tuple[float | None, str | None, int]:
    """What an executor offers for placement, appended after ``executor_params`` and times."""
    return (info.cpus, info.isolation, int(info.network_control))


def token_from_row(row: Mapping[str, Any]) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        revoked=bool(row["revoked"]),
        executor_id=row["executor_id"],
        project_id=row["project_id"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        user_id=row["user_id"],
    )
