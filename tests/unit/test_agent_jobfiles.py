"""The worker's file steps around a run, with a fake dispatcher: inputs in, outputs out."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from corral.agent.executor import JobRun, RunResult
from corral.agent.jobfiles import JobFilesError, TransferError, prepare_inputs, save_outputs
from corral.agent.reports import report_for
from corral.domain.jobs import JobSpec


class FakeTransfer:
    def __init__(self, archive: bytes = b"", fail: TransferError | None = None) -> None:
        self.archive = archive
        self.fail = fail
        self.uploaded: dict[str, bytes] = {}

    async def download_input(self, job_id: str, attempt: int, file_id: str, dest: Path) -> None:
        dest.write_bytes(self.archive)  # noqa: ASYNC240 - a fake, tiny files

    async def upload_artifact(self, job_id: str, attempt: int, path: str, source: Path) -> None:
        if self.fail is not None:
            raise self.fail
        self.uploaded[path] = source.read_bytes()  # noqa: ASYNC240 - a fake


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


async def test_the_archive_lands_at_the_job_root_and_inputs_are_read_from_cwd(
    tmp_path: Path,
) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    spec = JobSpec(command="true", input_file_id="f1", inputs=("data/in.txt",))
    files = FakeTransfer(zipped({"work/data/in.txt": b"hi", "top.txt": b"top"}))
    await prepare_inputs(files, "j1", 1, spec, job_dir, job_dir / "work")
    assert (job_dir / "work/data/in.txt").read_bytes() == b"hi"
    assert (job_dir / "top.txt").read_bytes() == b"top"
    assert not (job_dir / ".corral-input.zip").exists()


async def test_a_working_directory_missing_from_the_archive_fails(tmp_path: Path) -> None:
    spec = JobSpec(command="true", input_file_id="f1", working_directory="project")
    files = FakeTransfer(zipped({"other/run.sh": b"true"}))
    with pytest.raises(JobFilesError, match="working directory 'project' is not in the input"):
        await prepare_inputs(files, "j1", 1, spec, tmp_path, tmp_path / "project")


async def test_a_declared_input_must_exist(tmp_path: Path) -> None:
    spec = JobSpec(command="true", inputs=("in.txt",))
    with pytest.raises(JobFilesError, match=r"^missing input: in\.txt$"):
        await prepare_inputs(None, "j1", 1, spec, tmp_path, tmp_path)


async def test_a_refused_archive_is_not_retryable(tmp_path: Path) -> None:
    spec = JobSpec(command="true", input_file_id="f1")
    files = FakeTransfer(zipped({"../x": b"x"}))
    with pytest.raises(JobFilesError, match="input archive refused") as caught:
        await prepare_inputs(files, "j1", 1, spec, tmp_path, tmp_path)
    assert not caught.value.retryable


async def test_outputs_are_uploaded_and_missing_ones_noted(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.txt").write_bytes(b"A")
    spec = JobSpec(command="true", outputs=("out/a.txt", "gone.txt"))
    files = FakeTransfer()
    notes = await save_outputs(files, "j1", 1, spec, tmp_path)
    assert files.uploaded == {"out/a.txt": b"A"}
    assert notes == ("missing output: gone.txt",)
    report = report_for(JobRun("j1", 1, spec), RunResult(True, returncode=0, notes=notes))
    assert report is not None
    assert report["status"] == "completed"
    assert report["result"] == {"output_notes": ["missing output: gone.txt"]}


async def test_a_stale_attempt_stops_uploading(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"A")
    spec = JobSpec(command="true", outputs=("a", "b"))
    files = FakeTransfer(fail=TransferError("HTTP 409", stale=True))
    assert await save_outputs(files, "j1", 1, spec, tmp_path) == ()
