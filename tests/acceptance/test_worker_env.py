"""Secret env values and private-address refusal with the real server and worker processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.acceptance.test_worker_e2e import CORRAL, Cluster, clean_env, cluster, poll
from tests.acceptance.test_worker_limits import binary_server
from tests.processes import HOST_VISIBLE

__all__ = ["binary_server", "cluster"]  # fixtures shared with the other acceptance modules

SECRET = "s3cr3t-Value-4711"


def test_a_secret_reaches_the_job_but_no_reader_and_no_log(cluster: Cluster) -> None:
    cluster.worker("secrets", "--labels", "secrets", "--log-level", "debug")
    job_id = cluster.submit(
        command='echo "secret is $MY_SECRET"; echo "$MY_SECRET" | rev',
        labels=["secrets"],
        secret_env={"MY_SECRET": SECRET},
    )
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "completed", job
    # The process had the real value (reversed, it is not masked); the output has ***.
    assert job["stdout"] == f"secret is ***\n{SECRET[::-1]}\n"
    assert job["secret_env"] == {"MY_SECRET": "********"}
    status = cluster.cli("status", job_id, "--json")
    assert '"MY_SECRET": "********"' in status.stdout
    worker_log = (cluster.root / "secrets.log").read_text()
    assert job_id in worker_log  # the log is the worker's, and it logged this job
    assert SECRET not in worker_log
    assert SECRET not in (cluster.root / "server.log").read_text()


def test_the_cli_passes_secrets_without_putting_them_on_the_command_line(
    cluster: Cluster,
) -> None:
    cluster.worker("secrets-cli", "--labels", "secrets-cli")
    env = clean_env(CORRAL_URL=cluster.url, CORRAL_TOKEN=cluster.admin, MY_SECRET=SECRET)
    command = [
        *CORRAL,
        "submit",
        "--label",
        "secrets-cli",
        "--secret-env",
        "MY_SECRET",
        "--secret-env",
        "OTHER=given",
        "--wait",
        "--",
        "sh",
        "-c",
        'echo "$MY_SECRET $OTHER" | rev',
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert SECRET not in " ".join(command)  # a bare NAME: the value never hits ps
    assert done.returncode == 0, done.stderr
    job_id = done.stderr.strip().splitlines()[0]
    assert cluster.job(job_id)["stdout"] == f"{SECRET} given"[::-1] + "\n"


def test_item2_secret_values_are_masked_in_stored_output_even_split_across_reads(
    cluster: Cluster,
) -> None:
    """The worker blanks the value before sending: in stdout, in stderr, and when the
    job writes it in two pieces a while apart (two pipe reads, two batches)."""
    cluster.worker("masking", "--labels", "masking")
    half = len(SECRET) // 2
    script = (
        'echo "token=$TOKEN"; echo "err $TOKEN" >&2; '
        f'printf "%s" "${{TOKEN%"${{TOKEN#{"?" * half}}}"}}"; sleep 0.4; '
        f'printf "%s done\\n" "${{TOKEN#{"?" * half}}}"'
    )
    job_id = cluster.submit(command=script, labels=["masking"], secret_env={"TOKEN": SECRET})
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "completed", job
    assert job["stdout"] == "token=***\n*** done\n"
    assert job["stderr"] == "err ***\n"


def test_a_loopback_binary_url_is_refused_unless_allowed(
    cluster: Cluster, binary_server: tuple[str, Path, str]
) -> None:
    url, marker, sha = binary_server
    cluster.worker("guarded", "--labels", "guarded", *HOST_VISIBLE)
    refused = cluster.submit(
        type="tool", binary_url=url, binary_sha256=sha, priority="high", labels=["guarded"]
    )
    job = cluster.wait_status(refused, ("completed", "failed"))
    assert job["status"] == "failed", job
    assert job["error_message"].startswith("binary_url refused: 127.0.0.1 is a loopback address")
    assert "--allow-private-urls" in job["error_message"]
    assert job["attempt"] == 1  # the same answer on every worker: not retried
    assert not marker.exists()
    # The operator's flag lets the very same binary run.
    cluster.worker("trusting", "--labels", "trusting", "--allow-private-urls", *HOST_VISIBLE)
    allowed = cluster.submit(
        type="tool", binary_url=url, binary_sha256=sha, priority="high", labels=["trusting"]
    )
    assert cluster.wait_status(allowed, ("completed", "failed"))["status"] == "completed"
    poll(marker.exists, 5, "the binary's marker file")
