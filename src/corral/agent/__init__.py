"""`corral worker`: claims jobs from a dispatcher over HTTP and runs them as process groups.

    agent.py       the Agent: claim loop, heartbeat/renewal, result reporting, two-stage shutdown
    dispatcher.py  the async HTTP client of the native executor API (the agent's only way out)
    replicas.py    one round over the dispatcher's replicas per call (--server A,B)
    runner.py      claimed jobs: slots, the lease check before start, report or hand back
    stopping.py    the two-stage stop: bounded waits, a second signal cuts them short
    executor.py    one job's run: per-job directory, binary or shell, timeout, stop reasons
    process.py     spawning on the fast path, waiting through a pidfd, killing whole groups
    binaries.py    binary_url downloads, verified by sha256 and cached by hash
    output.py      bounded, batched forwarding of stdout/stderr to the dispatcher

Only the standard library, aiohttp, httpx and `corral.domain` are imported here: the agent
talks to the dispatcher over HTTP, never to its store or services.
"""
