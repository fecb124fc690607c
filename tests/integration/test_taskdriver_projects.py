"""TaskDriver's projects, task types and tasks over real HTTP: every endpoint, its fields,
status codes and error shapes, duplicate handling, templates, roles, and tasks with a
command running on the native claim like any job."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server

_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("taskdriver") / "data") as live:
        yield live


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    return {role: server.token(role) for role in ("submitter", "viewer", "worker")}


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture
def submitter(server: LiveServer, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(tokens["submitter"]) as http:
        yield http


def unique(prefix: str = "proj") -> str:
    return f"{prefix}-{next(_names)}"


def data(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is True
    return body["data"]


def error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The document's error shape, its correlationId being the response's X-Request-ID."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    assert body["timestamp"].endswith("Z")
    assert body["correlationId"] == answer.headers["x-request-id"]
    return body


def detail(answer: httpx.Response, field: str) -> dict[str, Any]:
    body = error(answer, 422)
    details = {d["field"]: d for d in body["validationDetails"]}
    assert field in details, body
    assert details[field]["message"] and "value" in details[field]
    assert body["error"].startswith("Validation failed: ")
    found: dict[str, Any] = details[field]
    return found


def project(http: httpx.Client, **body: Any) -> dict[str, Any]:
    found: dict[str, Any] = data(http.post("/api/projects", json={"name": unique(), **body}), 201)
    return found


def task_type(http: httpx.Client, project_id: str, **body: Any) -> dict[str, Any]:
    body = {"name": unique("type"), "template": "Analyze {{repo}} for {{aspect}}", **body}
    answer = http.post(f"/api/projects/{project_id}/task-types", json=body)
    found: dict[str, Any] = data(answer, 201)
    return found


def task(http: httpx.Client, project_id: str, status: int = 201, **body: Any) -> dict[str, Any]:
    found: dict[str, Any] = data(http.post(f"/api/projects/{project_id}/tasks", json=body), status)
    return found


VARS = {"repo": "https://github.com/company/webapp", "aspect": "auth"}


# --- projects ---------------------------------------------------------------------------
def test_create_project_answers_the_documented_fields(admin: httpx.Client) -> None:
    name = unique("ai-analysis")
    body = {
        "name": name,
        "description": "AI-powered code analysis",
        "instructions": "Follow security best practices",
        "config": {
            "defaultMaxRetries": 3,
            "defaultLeaseDurationMinutes": 15,
            "reaperIntervalMinutes": 2,
        },
    }
    created = data(admin.post("/api/projects", json=body), 201)
    assert created["name"] == name and created["status"] == "active"
    assert created["description"] == body["description"]
    assert created["instructions"] == body["instructions"]
    assert created["config"] == body["config"]
    assert created["agentLogin"] is True
    assert created["createdAt"].endswith("Z") and created["updatedAt"].endswith("Z")
    assert created["stats"] == {
        "totalTasks": 0,
        "completedTasks": 0,
        "failedTasks": 0,
        "queuedTasks": 0,
        "runningTasks": 0,
        "cancelledTasks": 0,
    }
    assert len(created["id"]) == 36  # a uuid
    assert data(admin.get(f"/api/projects/{created['id']}")) == created


def test_project_defaults_and_partial_update(admin: httpx.Client) -> None:
    created = project(admin)
    assert created["config"] == {
        "defaultMaxRetries": 3,
        "defaultLeaseDurationMinutes": 10,
        "reaperIntervalMinutes": 1,
    }
    change = {"description": "new", "status": "closed", "config": {"defaultMaxRetries": 5}}
    updated = data(admin.put(f"/api/projects/{created['id']}", json=change))
    assert updated["description"] == "new" and updated["status"] == "closed"
    assert updated["config"]["defaultMaxRetries"] == 5
    assert updated["config"]["defaultLeaseDurationMinutes"] == 10  # untouched keys stay
    assert updated["name"] == created["name"] and updated["instructions"] == ""
    off = data(admin.put(f"/api/projects/{created['id']}", json={"agentLogin": False}))
    assert off["agentLogin"] is False and off["status"] == "closed"


def test_list_projects_filters_and_pages(admin: httpx.Client) -> None:
    a, b = project(admin), project(admin)
    admin.put(f"/api/projects/{b['id']}", json={"status": "closed"})
    everything = admin.get("/api/projects", params={"limit": 100})
    ids = [p["id"] for p in data(everything)]
    assert a["id"] in ids and b["id"] in ids
    assert int(everything.headers["x-total-count"]) == len(ids)
    active = [p["id"] for p in data(admin.get("/api/projects", params={"status": "active"}))]
    closed = [p["id"] for p in data(admin.get("/api/projects", params={"status": "closed"}))]
    assert a["id"] in active and b["id"] not in active
    assert b["id"] in closed and a["id"] not in closed
    first = admin.get("/api/projects", params={"limit": 1, "offset": 1})
    assert len(data(first)) == 1 and first.json()["pagination"]["offset"] == 1
    assert "stats" in data(first)[0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "open"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_list_projects_refuses_bad_parameters(
    admin: httpx.Client, params: dict[str, Any], field: str
) -> None:
    detail(admin.get("/api/projects", params=params), field)


def test_invalid_project_names_and_config_are_422_with_details(admin: httpx.Client) -> None:
    found = detail(admin.post("/api/projects", json={"name": "invalid name!"}), "name")
    assert found["value"] == "invalid name!"
    assert "letters, numbers, hyphens, and underscores" in found["message"]
    detail(admin.post("/api/projects", json={}), "name")
    detail(admin.post("/api/projects", json={"name": 42}), "name")
    bad = {"name": unique(), "config": {"defaultMaxRetries": 101}}
    assert detail(admin.post("/api/projects", json=bad), "config.defaultMaxRetries")["value"] == 101
    bad = {"name": unique(), "config": {"defaultLeaseDurationMinutes": 0}}
    detail(admin.post("/api/projects", json=bad), "config.defaultLeaseDurationMinutes")
    bad = {"name": unique(), "config": {"defaultMaxRetries": "many"}}
    detail(admin.post("/api/projects", json=bad), "config.defaultMaxRetries")
    created = project(admin)
    detail(admin.put(f"/api/projects/{created['id']}", json={"status": "paused"}), "status")
    detail(admin.put(f"/api/projects/{created['id']}", json={"name": "a b"}), "name")


def test_duplicate_project_names_conflict(admin: httpx.Client) -> None:
    created = project(admin)
    error(admin.post("/api/projects", json={"name": created["name"]}), 409)
    other = project(admin)
    error(admin.put(f"/api/projects/{other['id']}", json={"name": created["name"]}), 409)


def test_unknown_projects_are_404(admin: httpx.Client) -> None:
    missing = "550e8400-e29b-41d4-a716-446655440000"
    for method, path in [
        ("GET", f"/api/projects/{missing}"),
        ("PUT", f"/api/projects/{missing}"),
        ("DELETE", f"/api/projects/{missing}"),
        ("GET", f"/api/projects/{missing}/stats"),
        ("GET", f"/api/projects/{missing}/task-types"),
        ("POST", f"/api/projects/{missing}/task-types"),
        ("GET", f"/api/projects/{missing}/tasks"),
        ("GET", "/api/projects/not-a-uuid"),
    ]:
        body = {"name": "x", "typeId": "t"} if method != "GET" else None
        error(admin.request(method, path, json=body), 404)


def test_delete_project(admin: httpx.Client, submitter: httpx.Client) -> None:
    created = project(admin)
    kind = task_type(admin, created["id"])
    queued = task(submitter, created["id"], typeId=kind["id"], variables=VARS)
    error(admin.delete(f"/api/projects/{created['id']}"), 409)  # a queued task would be orphaned
    data(submitter.delete(f"/api/tasks/{queued['id']}"))
    assert data(admin.delete(f"/api/projects/{created['id']}")) == {
        "id": created["id"],
        "deleted": True,
    }
    error(admin.get(f"/api/projects/{created['id']}"), 404)
    error(admin.get(f"/api/task-types/{kind['id']}"), 404)


# --- task types -------------------------------------------------------------------------
def test_task_type_round_trip(admin: httpx.Client) -> None:
    created = project(admin)
    body = {
        "name": "code-security-analysis",
        "template": "Analyze {{repository_url}} for {{security_aspects}}",
        "variables": ["repository_url", "security_aspects"],
        "duplicateHandling": "ignore",
        "maxRetries": 3,
        "leaseDurationMinutes": 30,
    }
    kind = data(admin.post(f"/api/projects/{created['id']}/task-types", json=body), 201)
    assert {k: kind[k] for k in body} == body
    assert kind["projectId"] == created["id"] and kind["createdAt"].endswith("Z")
    assert data(admin.get(f"/api/task-types/{kind['id']}")) == kind
    assert data(admin.get(f"/api/projects/{created['id']}/task-types")) == [kind]
    change = {"template": "Check {{repository_url}}", "maxRetries": 5}
    updated = data(admin.put(f"/api/task-types/{kind['id']}", json=change))
    assert updated["template"] == "Check {{repository_url}}" and updated["maxRetries"] == 5
    assert updated["duplicateHandling"] == "ignore" and updated["leaseDurationMinutes"] == 30
    reset = data(admin.put(f"/api/task-types/{kind['id']}", json={"leaseDurationMinutes": None}))
    assert reset["leaseDurationMinutes"] is None  # back to the project's default
    data(admin.delete(f"/api/task-types/{kind['id']}"))
    error(admin.get(f"/api/task-types/{kind['id']}"), 404)
    error(admin.delete(f"/api/task-types/{kind['id']}"), 404)
    error(admin.put(f"/api/task-types/{kind['id']}", json={}), 404)


def test_task_type_variables_default_to_the_templates(admin: httpx.Client) -> None:
    created = project(admin)
    kind = task_type(admin, created["id"], template="{{b}} then {{a}} then {{b}}")
    assert kind["variables"] == ["b", "a"]
    assert kind["duplicateHandling"] == "allow" and kind["maxRetries"] is None


def test_invalid_task_types_are_422_and_names_unique(admin: httpx.Client) -> None:
    pid = project(admin)["id"]
    url = f"/api/projects/{pid}/task-types"
    detail(admin.post(url, json={"name": "bad name"}), "name")
    detail(admin.post(url, json={}), "name")
    undeclared = {"name": "t", "template": "{{x}} {{y}}", "variables": ["x"]}
    detail(admin.post(url, json=undeclared), "template")
    found = detail(admin.post(url, json={"name": "t", "variables": ["1x"]}), "variables")
    assert found["value"] == "1x"
    detail(admin.post(url, json={"name": "t", "duplicateHandling": "merge"}), "duplicateHandling")
    detail(admin.post(url, json={"name": "t", "maxRetries": -1}), "maxRetries")
    detail(admin.post(url, json={"name": "t", "leaseDurationMinutes": 0}), "leaseDurationMinutes")
    detail(admin.post(url, json={"name": "t", "variables": "x"}), "variables")
    task_type(admin, pid, name="taken")
    error(admin.post(url, json={"name": "taken"}), 409)


def test_task_type_with_queued_tasks_is_not_deleted(
    admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid)
    queued = task(submitter, pid, typeId=kind["id"], variables=VARS)
    error(admin.delete(f"/api/task-types/{kind['id']}"), 409)
    data(submitter.delete(f"/api/tasks/{queued['id']}"))
    data(admin.delete(f"/api/task-types/{kind['id']}"))


# --- tasks ------------------------------------------------------------------------------
def test_task_renders_the_template_and_shows_the_documented_fields(
    admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin, config={"defaultMaxRetries": 4})["id"]
    kind = task_type(admin, pid)
    created = task(submitter, pid, typeId=kind["id"], variables=VARS, batchId="batch-1")
    assert created["instructions"] == "Analyze https://github.com/company/webapp for auth"
    assert created["variables"] == VARS
    assert created["projectId"] == pid and created["typeId"] == kind["id"]
    assert created["batchId"] == "batch-1" and created["status"] == "queued"
    assert created["assignedTo"] is None and created["assignedAt"] is None
    assert created["leaseExpiresAt"] is None and created["createdAt"].endswith("Z")
    assert created["retryCount"] == 0 and created["maxRetries"] == 4
    assert created["result"] is None and created["error"] is None
    assert data(submitter.get(f"/api/tasks/{created['id']}")) == created
    explicit = task(submitter, pid, typeId=kind["id"], instructions="Analyze module A")
    assert explicit["instructions"] == "Analyze module A" and explicit["variables"] == {}


def test_task_inputs_are_checked(admin: httpx.Client, submitter: httpx.Client) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid)
    bare = task_type(admin, pid, template="")
    other = task_type(admin, project(admin)["id"])
    url = f"/api/projects/{pid}/tasks"
    missing = detail(
        submitter.post(url, json={"typeId": kind["id"], "variables": {"repo": "r"}}), "variables"
    )
    assert missing["value"] == ["aspect"]
    detail(submitter.post(url, json={"typeId": bare["id"]}), "instructions")
    detail(submitter.post(url, json={"typeId": other["id"], "variables": VARS}), "typeId")
    detail(submitter.post(url, json={"typeId": "nope", "variables": VARS}), "typeId")
    detail(submitter.post(url, json={"variables": VARS}), "typeId")
    detail(submitter.post(url, json={"typeId": kind["id"], "variables": [1]}), "variables")
    detail(
        submitter.post(url, json={"typeId": kind["id"], "variables": VARS, "priority": 9}),
        "priority",
    )
    detail(
        submitter.post(url, json={"typeId": kind["id"], "command": "", "variables": VARS}),
        "command",
    )
    assert data(submitter.get(url)) == []


def test_closed_projects_take_no_tasks(admin: httpx.Client, submitter: httpx.Client) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid)
    admin.put(f"/api/projects/{pid}", json={"status": "closed"})
    answer = submitter.post(
        f"/api/projects/{pid}/tasks", json={"typeId": kind["id"], "variables": VARS}
    )
    error(answer, 409)
    bulk = {"tasks": [{"typeId": kind["id"], "variables": VARS}]}
    error(submitter.post(f"/api/projects/{pid}/tasks/bulk", json=bulk), 409)


def test_duplicate_handling(admin: httpx.Client, submitter: httpx.Client) -> None:
    pid = project(admin)["id"]
    ignore = task_type(admin, pid, duplicateHandling="ignore")
    allow = task_type(admin, pid, duplicateHandling="allow")
    fail = task_type(admin, pid, duplicateHandling="fail")
    first = task(submitter, pid, typeId=ignore["id"], variables=VARS)
    again = task(submitter, pid, status=200, typeId=ignore["id"], variables=VARS)
    assert again["id"] == first["id"]
    other_vars = task(submitter, pid, typeId=ignore["id"], variables={**VARS, "aspect": "x"})
    assert other_vars["id"] != first["id"]
    a = task(submitter, pid, typeId=allow["id"], variables=VARS)
    b = task(submitter, pid, typeId=allow["id"], variables=VARS)
    assert a["id"] != b["id"]
    task(submitter, pid, typeId=fail["id"], variables=VARS)
    answer = submitter.post(
        f"/api/projects/{pid}/tasks", json={"typeId": fail["id"], "variables": VARS}
    )
    error(answer, 409)
    assert len(data(submitter.get(f"/api/projects/{pid}/tasks"))) == 5
    # Once the task is gone, the same task may be created again.
    data(submitter.delete(f"/api/tasks/{first['id']}"))
    assert task(submitter, pid, typeId=ignore["id"], variables=VARS)["id"] != first["id"]


def test_bulk_creates_all_or_nothing_and_reports_existing(
    admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid, duplicateHandling="ignore")
    fail = task_type(admin, pid, duplicateHandling="fail")
    url = f"/api/projects/{pid}/tasks/bulk"
    existing = task(submitter, pid, typeId=kind["id"], variables=VARS)
    body = {
        "tasks": [
            {"typeId": kind["id"], "variables": VARS},
            {
                "typeId": kind["id"],
                "instructions": "Analyze module A",
                "variables": {"module": "a"},
            },
            {
                "typeId": kind["id"],
                "instructions": "Analyze module A",
                "variables": {"module": "a"},
            },
            {"typeId": kind["id"], "variables": {"repo": "r2", "aspect": "x"}, "batchId": "own"},
        ],
        "batchId": "batch-security-audit-2024",
    }
    result = data(submitter.post(url, json=body), 201)
    tasks = result["tasks"]
    assert len(tasks) == 4 and tasks[0]["id"] == existing["id"]
    assert tasks[1]["id"] == tasks[2]["id"]  # a duplicate within the request is folded too
    assert result["created"] == [tasks[1]["id"], tasks[3]["id"]]
    assert result["existing"] == [existing["id"], tasks[1]["id"]]
    assert result["createdCount"] == 2 and result["existingCount"] == 2
    assert tasks[1]["batchId"] == "batch-security-audit-2024" and tasks[3]["batchId"] == "own"
    assert data(submitter.post(url, json=body))["createdCount"] == 0  # all exist: 200
    bad = {
        "tasks": [
            {"typeId": kind["id"], "variables": {"repo": "n", "aspect": "n"}},
            {"typeId": kind["id"]},
        ]
    }
    found = detail(submitter.post(url, json=bad), "tasks.1.variables")
    assert found["value"] == ["aspect", "repo"]
    twice = {"tasks": [{"typeId": fail["id"], "variables": VARS}] * 2}
    error(submitter.post(url, json=twice), 409)
    before = len(data(submitter.get(f"/api/projects/{pid}/tasks")))
    assert before == 3  # nothing from the refused requests was kept
    detail(submitter.post(url, json={"tasks": []}), "tasks")
    detail(submitter.post(url, json={"tasks": [{"typeId": kind["id"]}] * 1001}), "tasks")


def test_list_tasks_filters(admin: httpx.Client, submitter: httpx.Client) -> None:
    pid = project(admin)["id"]
    one, two = task_type(admin, pid), task_type(admin, pid)
    a = task(submitter, pid, typeId=one["id"], variables=VARS, batchId="b1")
    b = task(submitter, pid, typeId=two["id"], variables=VARS, batchId="b2")
    c = task(submitter, pid, typeId=one["id"], variables=VARS, batchId="b2")
    url = f"/api/projects/{pid}/tasks"

    def ids(**params: Any) -> list[str]:
        return [t["id"] for t in data(submitter.get(url, params=params))]

    assert ids() == [a["id"], b["id"], c["id"]]  # queue order
    assert ids(typeId=one["id"]) == [a["id"], c["id"]]
    assert ids(batchId="b2") == [b["id"], c["id"]]
    assert ids(batchId="b2", typeId=one["id"]) == [c["id"]]
    assert ids(status="queued") == ids()
    assert ids(status="running") == [] and ids(assignedTo="agent-1") == []
    assert ids(limit=1, offset=1) == [b["id"]]
    answer = submitter.get(url, params={"limit": 1})
    assert answer.json()["pagination"] == {"total": 3, "limit": 1, "offset": 0, "hasMore": True}
    detail(submitter.get(url, params={"status": "done"}), "status")
    detail(submitter.get(url, params={"limit": 1001}), "limit")
    detail(submitter.get(url, params={"limit": 0}), "limit")


def test_update_and_delete_tasks(admin: httpx.Client, submitter: httpx.Client) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid, duplicateHandling="fail")
    created = task(submitter, pid, typeId=kind["id"], variables=VARS)
    url = f"/api/tasks/{created['id']}"
    # Rendered instructions follow new variables...
    moved = data(submitter.put(url, json={"variables": {**VARS, "aspect": "xss"}}))
    assert moved["instructions"].endswith("for xss") and moved["variables"]["aspect"] == "xss"
    # ...explicit ones are kept as given.
    explicit = data(submitter.put(url, json={"instructions": "Updated instructions..."}))
    assert explicit["instructions"] == "Updated instructions..."
    kept = data(submitter.put(url, json={"variables": {"repo": "r", "aspect": "a"}}))
    assert kept["instructions"] == "Updated instructions..."
    assert data(submitter.get(url)) == kept
    # An update that would make it identical to another task of a 'fail' type conflicts.
    twin = task(submitter, pid, typeId=kind["id"], variables=VARS)
    twin_change = {
        "instructions": "Updated instructions...",
        "variables": {"repo": "r", "aspect": "a"},
    }
    error(submitter.put(f"/api/tasks/{twin['id']}", json=twin_change), 409)
    detail(submitter.put(url, json={"variables": "x"}), "variables")
    assert data(submitter.delete(url)) == {"id": created["id"], "deleted": True}
    error(submitter.get(url), 404)
    error(submitter.put(url, json={}), 404)
    error(submitter.delete(url), 404)


def test_a_plain_job_is_not_a_task(server: LiveServer, submitter: httpx.Client) -> None:
    job = submitter.post("/api/v1/jobs", json={"command": "echo hi"})
    assert job.status_code == 201, job.text
    error(submitter.get(f"/api/tasks/{job.json()['id']}"), 404)


def test_tasks_with_a_command_run_on_workers_and_others_wait_for_agents(
    server: LiveServer, tokens: dict[str, str], admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid, leaseDurationMinutes=2)
    waiting = task(submitter, pid, typeId=kind["id"], variables=VARS)
    runnable = task(submitter, pid, typeId=kind["id"], variables=VARS, command="echo hi")
    assert runnable["command"] == "echo hi"
    claim = {"executor_id": "td-worker", "runnable_only": True, "project_id": pid}
    with server.client(tokens["worker"]) as worker:
        got = worker.post("/api/v1/jobs/claim", json=claim)
        assert got.status_code == 200, got.text
        assert got.json()["id"] == runnable["id"]
        assert worker.post("/api/v1/jobs/claim", json=claim).status_code == 204
        error(worker.get(f"/api/projects/{pid}"), 403)  # workers do not read projects
    running = data(submitter.get(f"/api/tasks/{runnable['id']}"))
    assert running["status"] == "running" and running["assignedTo"] == "td-worker"
    assert running["assignedAt"].endswith("Z") and running["leaseExpiresAt"].endswith("Z")
    assert data(submitter.get(f"/api/tasks/{waiting['id']}"))["status"] == "queued"
    error(submitter.put(f"/api/tasks/{runnable['id']}", json={"instructions": "x"}), 409)
    error(submitter.delete(f"/api/tasks/{runnable['id']}"), 409)
    listed = data(submitter.get(f"/api/projects/{pid}/tasks", params={"assignedTo": "td-worker"}))
    assert [t["id"] for t in listed] == [runnable["id"]]
    stats = data(submitter.get(f"/api/projects/{pid}/stats"))
    assert stats["queueDepth"] == 1 and stats["activeAgents"] == 1
    assert stats["project"]["id"] == pid
    assert stats["project"]["stats"]["runningTasks"] == 1
    assert stats["project"]["stats"]["totalTasks"] == 2
    assert stats["recentActivity"] == {
        "tasksCompletedLastHour": 0,
        "tasksFailedLastHour": 0,
        "averageTaskDuration": None,
    }
    summary = data(submitter.get(f"/api/projects/{pid}"))["stats"]
    assert summary["queuedTasks"] == 1 and summary["runningTasks"] == 1


def test_completed_tasks_count_in_recent_activity(
    server: LiveServer, tokens: dict[str, str], admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid)
    done = task(submitter, pid, typeId=kind["id"], variables=VARS, command="true")
    claim = {"executor_id": "td-worker-2", "runnable_only": True, "project_id": pid}
    with server.client(tokens["worker"]) as worker:
        assert worker.post("/api/v1/jobs/claim", json=claim).status_code == 200
        report = {"executor_id": "td-worker-2", "exit_code": 0, "result": {"ok": True}}
        finished = worker.put(f"/api/v1/jobs/{done['id']}/complete", json=report)
        assert finished.status_code == 200, finished.text
    stats = data(submitter.get(f"/api/projects/{pid}/stats"))
    assert stats["recentActivity"]["tasksCompletedLastHour"] == 1
    assert stats["recentActivity"]["averageTaskDuration"] >= 0
    assert stats["activeAgents"] == 0 and stats["queueDepth"] == 0
    shown = data(submitter.get(f"/api/tasks/{done['id']}"))
    assert shown["status"] == "completed" and shown["result"] == {"ok": True}
    assert shown["completedAt"].endswith("Z") and shown["assignedTo"] == "td-worker-2"
    assert shown["leaseExpiresAt"] is None and shown["retryCount"] == 0


# --- roles ------------------------------------------------------------------------------
def test_viewers_read_but_do_not_write(
    server: LiveServer, tokens: dict[str, str], admin: httpx.Client, submitter: httpx.Client
) -> None:
    created = project(admin)
    pid = created["id"]
    kind = task_type(admin, pid)
    queued = task(submitter, pid, typeId=kind["id"], variables=VARS)
    with server.client(tokens["viewer"]) as viewer:
        assert data(viewer.get(f"/api/projects/{pid}"))["id"] == pid
        data(viewer.get("/api/projects"))
        data(viewer.get(f"/api/projects/{pid}/stats"))
        data(viewer.get(f"/api/projects/{pid}/task-types"))
        data(viewer.get(f"/api/task-types/{kind['id']}"))
        data(viewer.get(f"/api/projects/{pid}/tasks"))
        data(viewer.get(f"/api/tasks/{queued['id']}"))
        error(viewer.post("/api/projects", json={"name": unique()}), 403)
        error(viewer.put(f"/api/projects/{pid}", json={"description": "x"}), 403)
        error(viewer.delete(f"/api/projects/{pid}"), 403)
        error(viewer.post(f"/api/projects/{pid}/task-types", json={"name": "v"}), 403)
        error(
            viewer.post(
                f"/api/projects/{pid}/tasks", json={"typeId": kind["id"], "variables": VARS}
            ),
            403,
        )
        bulk = {"tasks": [{"typeId": kind["id"], "variables": VARS}]}
        error(viewer.post(f"/api/projects/{pid}/tasks/bulk", json=bulk), 403)
        error(viewer.put(f"/api/tasks/{queued['id']}", json={"instructions": "x"}), 403)
        error(viewer.delete(f"/api/tasks/{queued['id']}"), 403)


def test_project_and_type_writes_are_for_admins(
    admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid)
    error(submitter.post("/api/projects", json={"name": unique()}), 403)
    error(submitter.put(f"/api/projects/{pid}", json={"description": "x"}), 403)
    error(submitter.delete(f"/api/projects/{pid}"), 403)
    error(submitter.post(f"/api/projects/{pid}/task-types", json={"name": "s"}), 403)
    error(submitter.put(f"/api/task-types/{kind['id']}", json={"maxRetries": 1}), 403)
    error(submitter.delete(f"/api/task-types/{kind['id']}"), 403)


def test_submitters_change_only_their_own_tasks(
    server: LiveServer, admin: httpx.Client, submitter: httpx.Client
) -> None:
    pid = project(admin)["id"]
    kind = task_type(admin, pid)
    mine = task(submitter, pid, typeId=kind["id"], variables=VARS)
    with server.client(server.token("submitter")) as someone_else:
        error(someone_else.put(f"/api/tasks/{mine['id']}", json={"instructions": "x"}), 403)
        error(someone_else.delete(f"/api/tasks/{mine['id']}"), 403)
    assert (
        data(admin.put(f"/api/tasks/{mine['id']}", json={"instructions": "x"}))["instructions"]
        == "x"
    )
    data(admin.delete(f"/api/tasks/{mine['id']}"))


def test_no_token_is_401(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        error(anonymous.get("/api/projects"), 401)
        error(anonymous.post("/api/projects", json={"name": unique()}), 401)


# --- never a 5xx on bad input -----------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/projects", [1, 2]),
        ("POST", "/api/projects", {"name": None}),
        ("POST", "/api/projects", {"name": "x", "config": "fast"}),
        ("POST", "/api/projects", {"name": "x", "agentLogin": "perhaps"}),
        ("POST", "/api/projects", {"name": "x" * 5000}),
        ("PUT", "/api/projects/{pid}", {"config": {"reaperIntervalMinutes": -1}}),
        ("PUT", "/api/projects/{pid}", {"config": {"defaultMaxRetries": 1.5}}),
        ("POST", "/api/projects/{pid}/task-types", {"name": "t", "template": 5}),
        ("POST", "/api/projects/{pid}/task-types", {"name": "t", "variables": [1]}),
        ("POST", "/api/projects/{pid}/tasks", {"typeId": 5}),
        ("POST", "/api/projects/{pid}/tasks", {"typeId": "{tid}", "timeout": 0, "variables": {}}),
        ("POST", "/api/projects/{pid}/tasks", {"typeId": "{tid}", "batchId": ""}),
        ("POST", "/api/projects/{pid}/tasks/bulk", {"tasks": "all"}),
        ("POST", "/api/projects/{pid}/tasks/bulk", {"tasks": [None]}),
        ("PUT", "/api/tasks/nope", {"instructions": "x"}),
        ("GET", "/api/projects/{pid}/tasks?offset=x", None),
        ("GET", "/api/projects/{pid}/tasks?typeId=&batchId=", None),
        ("PUT", "/api/task-types/{tid}", {"duplicateHandling": 1}),
        ("PUT", "/api/task-types/{tid}", {"name": "with space"}),
    ],
)
def test_bad_input_is_never_a_server_error(
    admin: httpx.Client, method: str, path: str, body: Any
) -> None:
    pid = project(admin)["id"]
    tid = task_type(admin, pid, template="")["id"]
    answer = admin.request(method, path.format(pid=pid, tid=tid), json=body)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error(answer, answer.status_code)


def test_malformed_json_is_400(admin: httpx.Client) -> None:
    answer = admin.post(
        "/api/projects", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    error(answer, 400)
