"""``/``: the jobs list, with filters, keyset pages and rows that follow the jobs live.

The filter form is a plain GET, so every view is a link: bookmarkable, and what the
counts and the pager point at. Pages are keyset, never OFFSET: ``before``/``after``
carry a job's ``seq`` and the store walks from there, so a page deep in 100,000 jobs
costs what the first one does. The table lives in a ``data-live="jobs"`` element
whose fragment is this same URL plus ``fragment=rows``; ``app.js`` fetches it again
when ``/ui/events`` says a job moved, which on the first page also brings new jobs in
at the top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import Viewer, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep
from corral.domain.jobs import Job
from corral.domain.priority import LEVELS, parse_priority
from corral.domain.states import JobStatus
from corral.errors import InvalidInput
from corral.services.container import Services
from corral.services.jobs import JobsPage
from corral.store.base import JobQuery

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50
MAX_PROJECTS = 500  # offered in the project filter; TaskDriver users have a handful
SORTS = {"newest": True, "oldest": False}
MAX_SEQ = (1 << 63) - 1
Field = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True, slots=True)
class Pager:
    """Where the page sits in the walk; links are None where there is nothing more."""

    older: str | None
    newer: str | None
    start: str | None  # back to the first page, from anywhere else


@router.get("/")
async def home(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    status: Field = "",
    worker: Field = "",
    label: Field = "",
    project: Field = "",
    priority: Field = "",
    q: Field = "",
    sort: Field = "newest",
    before: Field = "",
    after: Field = "",
    fragment: Field = "",
) -> Response:
    if fragment not in ("", "rows"):
        raise InvalidInput("fragment must be rows", field="fragment")
    filters = {"status": status, "worker": worker, "label": label, "project": project}
    filters |= {"priority": priority, "q": q, "sort": sort}
    filters = {name: value for name, value in filters.items() if value.strip()}
    query = parse_query(filters, before, after)
    page, query = await load(services, viewer, query)
    context = render_context(viewer, filters, query, page)
    if not fragment:  # the filter form (and the retention note) are not live rows
        context["projects"] = await project_choices(services, viewer, filters.get("project"))
        context["retention"] = services.retention
    return TEMPLATES.TemplateResponse(
        request, "jobs_rows.html" if fragment else "home.html", context
    )


async def project_choices(
    services: Services, viewer: Viewer, chosen: str | None
) -> list[tuple[str, str]]:
    """(id, name) of the projects the filter offers, by name; a chosen id beyond the
    first ``MAX_PROJECTS`` (or of a deleted project) stays offered, so it stays chosen."""
    views, _ = await services.projects.list_projects(viewer.principal, None, MAX_PROJECTS, 0)
    choices = sorted(((v.project.id, v.project.name) for v in views), key=lambda c: c[1].lower())
    if chosen and chosen.strip() not in {pid for pid, _ in choices}:
        choices.append((chosen.strip(), chosen.strip()))
    return choices


def parse_query(filters: dict[str, str], before: str, after: str) -> JobQuery:
    """The form's strings as a store query; a value that cannot mean anything is a 400."""
    status = filters.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        allowed = ", ".join(s.value for s in JobStatus)
        raise InvalidInput(f"status must be one of {allowed}", field="status")
    sort = filters.get("sort", "newest")
    if sort not in SORTS:
        raise InvalidInput("sort must be newest or oldest", field="sort")
    priority = filters.get("priority")
    return JobQuery(
        status=JobStatus(status) if status else None,
        executor_id=_stripped(filters.get("worker")),
        label=_stripped(filters.get("label")),
        project_id=_stripped(filters.get("project")),
        priority=parse_priority(priority.strip()) if priority else None,
        text=filters.get("q"),
        before_seq=_cursor(before, "before"),
        after_seq=_cursor(after, "after"),
        newest_first=SORTS[sort],
    )


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _cursor(value: str, name: str) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_SEQ:
        raise InvalidInput(f"{name} must be a job's sequence number", field=name)
    return int(value)


async def load(services: Services, viewer: Viewer, query: JobQuery) -> tuple[JobsPage, JobQuery]:
    """One row more than shown, to know whether the walk goes on. A walk back towards
    the first page that reaches it *is* the first page: shown as such (full, and live
    for new jobs) rather than as a short page behind a cursor."""
    page = await services.jobs.page(viewer.principal, query, PAGE_SIZE + 1)
    towards_start = query.walks_down != query.newest_first
    if towards_start and len(page.jobs) <= PAGE_SIZE:
        query = replace(query, before_seq=None, after_seq=None)
        page = await services.jobs.page(viewer.principal, query, PAGE_SIZE + 1)
    return page, query


def shown(query: JobQuery, jobs: Sequence[Job]) -> list[Job]:
    """Drop the look-ahead row, which sits at the far end of the walk."""
    if len(jobs) <= PAGE_SIZE:
        return list(jobs)
    return list(jobs[:PAGE_SIZE] if query.walks_down == query.newest_first else jobs[1:])


def pager(query: JobQuery, jobs: Sequence[Job], link: Callable[..., str]) -> Pager:
    """Older/Newer carry the oldest/newest seq on the page; the direction the store did
    not walk has more exactly when the page was reached through a cursor."""
    rows = shown(query, jobs)
    more = len(jobs) > PAGE_SIZE
    cursor = query.before_seq is not None or query.after_seq is not None
    has_older = more if query.walks_down else query.after_seq is not None
    has_newer = query.before_seq is not None if query.walks_down else more
    seqs = [j.seq for j in rows]
    return Pager(
        older=link(before=min(seqs)) if has_older and seqs else None,
        newer=link(after=max(seqs)) if has_newer and seqs else None,
        start=link() if cursor else None,
    )


def linker(filters: dict[str, str]) -> Callable[..., str]:
    """``link(**changes)``: this view with some filters changed (``""`` drops one) and
    any cursor given; the sort is kept, other cursors dropped."""

    def link(**changes: Any) -> str:
        params = {**filters, **{k: str(v) for k, v in changes.items()}}
        params = {k: v for k, v in params.items() if v and not (k == "sort" and v == "newest")}
        return "/?" + urlencode(params) if params else "/"

    return link


def render_context(
    viewer: Viewer, filters: dict[str, str], query: JobQuery, page: JobsPage
) -> dict[str, Any]:
    link = linker(filters)
    cursor = {"before": query.before_seq or "", "after": query.after_seq or ""}
    return {
        "viewer": viewer,
        "nav": "jobs",
        "jobs": shown(query, page.jobs),
        "counts": {status.value: n for status, n in page.counts.items()},
        "total": sum(page.counts.values()),
        "filters": filters,
        "filtered": any(k != "sort" for k in filters),
        "newest_first": query.newest_first,
        "statuses": [s.value for s in JobStatus],
        "levels": LEVELS,
        "link": link,
        "count_link": lambda status: linker({"sort": filters.get("sort", "")})(status=status),
        "pager": pager(query, page.jobs, link),
        "fragment_url": link(**cursor, fragment="rows"),
    }
