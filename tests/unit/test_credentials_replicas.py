"""A saved login's token goes only to the servers it was saved for, replica lists included."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.client.credentials import SavedLogin, resolve, save_login

A, B, C = "http://a:3000", "http://b:3000", "http://c:3000"


@pytest.fixture(autouse=True)
def _config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))


def test_a_login_saved_for_replicas_serves_any_of_them_and_no_other() -> None:
    save_login(SavedLogin(url=f"{A},{B}", token="saved"))
    assert resolve(None, None) == (f"{A},{B}", "saved")
    assert resolve(A, None) == (A, "saved")
    assert resolve(f"{B}, {A}/", None) == (f"{B}, {A}", "saved")
    assert resolve(f"{A},{C}", None) == (f"{A},{C}", None)  # C was never vouched for
    assert resolve(C, None) == (C, None)


def test_a_login_saved_for_one_server_is_not_sent_to_a_list_with_others() -> None:
    save_login(SavedLogin(url=A, token="saved"))
    assert resolve(A, None) == (A, "saved")
    assert resolve(f"{A},{B}", None) == (f"{A},{B}", None)
