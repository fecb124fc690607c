"""What the server tells an agent client about itself when it connects (both transports)."""

INSTRUCTIONS = (
    "Corral runs shell commands on a fleet of workers and hands out TaskDriver tasks to "
    "agents under leases. To work a project's queue: get_project (read its instructions), "
    "get_next_task, do the task, complete_task or fail_task. To run a command: "
    "submit_command, wait_for_job, tail_output."
)
