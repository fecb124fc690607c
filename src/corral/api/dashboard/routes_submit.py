"""``/submit``: a shell command from a form, with an optional input archive.

The form is multipart, so this route parses it itself (at most one file and a
few fields; the file spools to a temporary file, the body limit caps the whole)
and checks the CSRF token from what it parsed. Everything the form says is
checked before the archive is uploaded, so a refused form stores nothing; a
refusal re-renders the form with the person's own values, except secret values,
which never travel back to a browser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from corral.api.bodylimit import BodyTooLarge
from corral.api.dashboard.routes_job import job_url
from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.security import check_csrf
from corral.api.dashboard.session import Viewer, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep
from corral.auth.policy import Action, require
from corral.domain.jobs import DEFAULT_TIMEOUT, MAX_TIMEOUT, JobDraft, JobSpec, Resources
from corral.domain.priority import parse_priority
from corral.errors import InvalidInput, TooLarge
from corral.services.container import Services

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PRIORITIES = ("high", "normal", "low")
FIELDS = (
    "command",
    "labels",
    "timeout",
    "priority",
    "env",
    "secret_env",
    "cpus",
    "memory_mb",
    "no_network",
)
MAX_FIELDS = 20  # the form sends 7; room to grow, but never a flood of parts
CHUNK = 1 << 20  # bytes read from the spooled archive per piece handed to the store


@dataclass(frozen=True, slots=True)
class SubmitForm:
    """What the person typed, kept as text so a refused form comes back as they left it."""

    command: str = ""
    labels: str = ""
    timeout: str = str(DEFAULT_TIMEOUT)
    priority: str = "normal"
    env: str = ""
    secret_env: str = ""
    cpus: str = ""  # resources (issue 12): blank asks for nothing
    memory_mb: str = ""
    no_network: str = ""  # a checkbox: "on" when ticked

    @classmethod
    def of(cls, form: FormData) -> SubmitForm:
        values = {name: form.get(name) for name in FIELDS}
        return cls(**{k: v for k, v in values.items() if isinstance(v, str)})

    def draft(self) -> JobDraft:
        """The job this form asks for, checked by the same rules as every API's."""
        if self.priority not in PRIORITIES:
            raise InvalidInput("priority must be high, normal or low", field="priority")
        spec = JobSpec(
            # Browsers send textarea lines with CRLF; a shell wants LF.
            command=self.command.replace("\r\n", "\n"),
            labels=tuple(s for s in (p.strip() for p in self.labels.split(",")) if s),
            timeout=_timeout(self.timeout),
            env=_env_lines(self.env, "env"),
            secret_env=_env_lines(self.secret_env, "secret_env"),
            resources=self._resources(),
            network=not self.no_network,
        )
        spec.validate()
        return JobDraft(spec, parse_priority(self.priority))

    def _resources(self) -> Resources | None:
        cpus = _number(self.cpus, "cpus")
        memory = _whole(self.memory_mb, "memory_mb")
        return None if cpus is None and memory is None else Resources(cpus, memory)

    def shown(self) -> SubmitForm:
        """The values a re-rendered form may carry: never a secret value."""
        return dataclasses.replace(self, secret_env="")


def _timeout(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(
            f"timeout must be a whole number of seconds (1 to {MAX_TIMEOUT})", field="timeout"
        ) from None


def _number(text: str, field: str) -> float | None:
    """A blank field asks for nothing; anything else must be a number."""
    try:
        return float(text) if text.strip() else None
    except ValueError:
        raise InvalidInput(f"{field} must be a number", field=f"resources.{field}") from None


def _whole(text: str, field: str) -> int | None:
    value = _number(text, field)
    if value is not None and not value.is_integer():
        raise InvalidInput(f"{field} must be a whole number", field=f"resources.{field}")
    return None if value is None else int(value)


def _env_lines(text: str, field: str) -> dict[str, str]:
    """``NAME=value`` per line; blank lines are skipped, the value is kept verbatim."""
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInput(f"{field} line {number}: expected NAME=value", field=field)
        if name in env:
            raise InvalidInput(f"{field} line {number}: {name} is given twice", field=field)
        env[name] = value
    return env


def _form_page(
    request: Request,
    viewer: Viewer,
    values: SubmitForm,
    error: InvalidInput | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "viewer": viewer,
        "nav": "submit",
        "values": values.shown(),
        "secret_dropped": bool(values.secret_env.strip()),
        "priorities": PRIORITIES,
        "max_timeout": MAX_TIMEOUT,
        "error": error.message if error else None,
        "error_field": error.context.get("field") if error else None,
    }
    return TEMPLATES.TemplateResponse(request, "submit.html", context, status_code=status)


@router.get("/submit")
async def submit_page(request: Request, viewer: ViewerDep) -> Response:
    require(viewer.principal, Action.SUBMIT)
    return _form_page(request, viewer, SubmitForm())


@router.post("/submit")
async def submit(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    services.files.check_upload(viewer.principal)  # before a byte of the body is parsed
    form = await _parse(request)
    try:
        presented = form.get("csrf")
        token = presented if isinstance(presented, str) else None
        check_csrf(request, services.accounts.secret, viewer.session_token, token)
        values = SubmitForm.of(form)
        try:
            job_id = await _submit(services, viewer, values, _archive(form))
        except InvalidInput as exc:
            status = 413 if isinstance(exc, TooLarge) else 400
            return _form_page(request, viewer, values, exc, status)
    finally:
        await form.close()
    return RedirectResponse(job_url(job_id), status_code=303)


async def _parse(request: Request) -> FormData:
    """One file and a few fields; the framework's refusals become the dashboard's errors."""
    try:
        return await request.form(max_files=1, max_fields=MAX_FIELDS)
    except BodyTooLarge as exc:
        raise TooLarge(f"the form exceeds {exc.limit} bytes", limit=exc.limit) from None
    except HTTPException as exc:  # a malformed body, or too many fields or files
        raise InvalidInput(f"the form could not be read: {exc.detail}") from None


def _archive(form: FormData) -> UploadFile | None:
    """The chosen file; an empty file input (nothing chosen) is no archive."""
    part = form.get("archive")
    if not isinstance(part, UploadFile) or (not part.filename and not part.size):
        return None
    return part


async def _submit(
    services: Services, viewer: Viewer, values: SubmitForm, archive: UploadFile | None
) -> str:
    draft = values.draft()  # every refusal of the form comes before anything is stored
    if archive is not None:
        await _check_zip(archive)
        stored = await services.files.upload(
            viewer.principal,
            archive.filename or "input.zip",
            archive.content_type,
            _pieces(archive),
        )
        spec = dataclasses.replace(draft.spec, input_file_id=stored.id)
        draft = dataclasses.replace(draft, spec=spec)
    submitted = await services.jobs.submit(viewer.principal, [draft])
    return submitted.jobs[0].id


async def _check_zip(archive: UploadFile) -> None:
    """A worker extracts zips only; anything else would be stored for a job bound to fail.

    The thorough check (zip-slip, bombs, links) is the file service's, during upload.
    """
    is_zip = await asyncio.to_thread(zipfile.is_zipfile, archive.file)
    await archive.seek(0)
    if not is_zip:
        raise InvalidInput("the input archive is not a zip file", field="archive")


async def _pieces(archive: UploadFile) -> AsyncIterator[bytes]:
    await archive.seek(0)
    while piece := await archive.read(CHUNK):
        yield piece
