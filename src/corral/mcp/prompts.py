"""The prompts an agent client offers its user: "work the queue of project P"."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

WORK_QUEUE = """\
You are an agent working the task queue of the Corral project "{project}".

Repeat until the queue is empty:
1. Call get_project with projectId "{project}" and read its instructions: they apply to \
every task. Read them again whenever you start a new task.
2. Call get_next_task with projectId "{project}"{agent_clause}. If it returns no task, \
the queue is empty: stop and say so.
3. Do the task exactly as its instructions say, with the task's variables. If the work \
will take longer than the lease (leaseExpiresAt), call extend_task_lease with its \
taskId before the lease runs out.
4. When it is done, call complete_task with the taskId, a short result text and any \
structured outputs. If you cannot do it, call fail_task with the taskId and an error \
that says why (canRetry false when trying again cannot help).

Never complete or fail a task you did not get from get_next_task yourself.
"""


def register(server: MCPServer) -> None:
    @server.prompt(name="work_queue", title="Work the queue of a project")
    def work_queue(projectId: str, agentName: str | None = None) -> str:
        """Take the tasks of a project's queue one by one: read the project's
        instructions, take a task, do it, then complete or fail it."""
        clause = f' and agentName "{agentName}"' if agentName else ""
        return WORK_QUEUE.format(project=projectId, agent_clause=clause)
