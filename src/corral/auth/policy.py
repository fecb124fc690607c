"""The one authorization policy every face calls through the services.

``can`` is pure: a principal, an action and (for owned objects) the owner.
"""

from __future__ import annotations

from enum import StrEnum

from corral.domain.principals import Principal, Role
from corral.errors import Forbidden


class Action(StrEnum):
    READ = "read"  # jobs, output, executors, stats
    SUBMIT = "submit"
    CANCEL = "cancel"
    EXECUTE = "execute"  # claim, heartbeat, report, stream output
    REGISTER_EXECUTOR = "register_executor"
    ADMIN = "admin"  # tokens, deleting executors


_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.SUBMITTER: frozenset({Action.READ, Action.SUBMIT, Action.CANCEL}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.WORKER: frozenset({Action.EXECUTE, Action.REGISTER_EXECUTOR}),
    Role.AGENT: frozenset({Action.EXECUTE}),
}


def can(principal: Principal, action: Action, owner_id: str | None = None) -> bool:
    if action not in _ALLOWED[principal.role]:
        return False
    # A submitter cancels only what it submitted; admins cancel anything.
    return not (
        action == Action.CANCEL
        and principal.role == Role.SUBMITTER
        and owner_id is not None
        and owner_id != principal.id
    )


def require(principal: Principal, action: Action, owner_id: str | None = None) -> None:
    if not can(principal, action, owner_id):
        raise Forbidden(f"role {principal.role} may not {action}", action=str(action))


def require_executor(principal: Principal, executor_id: str) -> None:
    """A token bound to one executor may not speak for another one."""
    if principal.executor_id is not None and principal.executor_id != executor_id:
        raise Forbidden(
            "this worker token belongs to another worker",
            worker_id=executor_id,
        )


def require_project(principal: Principal, project_id: str | None) -> None:
    """An agent session acts only inside the project it logged in to."""
    if principal.project_id is not None and principal.project_id != project_id:
        raise Forbidden("this session belongs to another project", project_id=project_id)


def lease_holder(principal: Principal) -> str:
    """Whom a lease taken by ``principal`` belongs to: its own id, except that an agent
    session's leases belong to the credential it logged in with (its own id after an
    open login). Only the holder completes, fails, extends or resumes the lease."""
    if principal.role is Role.AGENT and principal.credential_id is not None:
        return principal.credential_id
    return principal.id


def is_agent_token(principal: Principal) -> bool:
    """An agent API token is its own credential; a session's is the one it was earned with."""
    return principal.role is Role.AGENT and principal.credential_id == principal.id


def is_agent_session(principal: Principal) -> bool:
    return principal.role is Role.AGENT and not is_agent_token(principal)


def may_open_agent_session(credential: Principal, project_id: str) -> bool:
    """Admins may log agents in anywhere; an agent token only in its own project (a
    session never earns another)."""
    if credential.role is Role.ADMIN:
        return True
    return is_agent_token(credential) and credential.project_id == project_id


def require_project_read(principal: Principal, project_id: str) -> None:
    """Readers read every project; an agent (session or token) only its own, since
    TaskDriver tells agents to read the project's instructions before every task."""
    if principal.role is Role.AGENT:
        if principal.project_id is None or principal.project_id != project_id:
            raise Forbidden("an agent reads only its own project", project_id=project_id)
        return
    require(principal, Action.READ)


def require_executor_owner(principal: Principal, owner_id: str | None) -> None:
    """Workers act only for executors registered under their own token; admins for any.

    Several ``corral worker``s may share one join token, and then they share
    executors too: the token, not the machine, is the identity.
    """
    if principal.role is Role.ADMIN or owner_id is None or owner_id == principal.id:
        return
    raise Forbidden("this executor was registered by another token")
