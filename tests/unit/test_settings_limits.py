"""Rate limits, body limits and CORS origins are checked when the settings load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corral.settings import ServerSettings

RATE_FIELDS = ["rate_limit", "worker_rate_limit", "auth_failure_rate_limit", "login_rate_limit"]


def test_defaults_limit_people_and_spare_workers() -> None:
    settings = ServerSettings()
    assert settings.rate_limit == "6000/minute"
    assert settings.worker_rate_limit is None
    assert settings.auth_failure_rate_limit == "60/minute"
    assert settings.login_rate_limit == "10/minute"
    assert settings.max_json_bytes == 4 << 20
    assert settings.cors_origins == []


@pytest.mark.parametrize("field", RATE_FIELDS)
@pytest.mark.parametrize("value", ["off", "OFF", "", "  "])
def test_off_or_empty_switches_a_limit_off(field: str, value: str) -> None:
    assert getattr(ServerSettings.model_validate({field: value}), field) is None


@pytest.mark.parametrize("value", ["5/second", "100 per minute", "1000/hour", "2/10 seconds"])
def test_rates_in_the_limits_notation_are_kept(value: str) -> None:
    assert ServerSettings(rate_limit=value).rate_limit == value


@pytest.mark.parametrize("field", RATE_FIELDS)
@pytest.mark.parametrize("value", ["lots", "100", "100/fortnight", "0/minute", "1/second;5/minute"])
def test_a_bad_rate_is_refused_naming_its_variable(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"CORRAL_{field.upper()} must be"):
        ServerSettings.model_validate({field: value})


def test_rates_and_origins_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_RATE_LIMIT", "off")
    monkeypatch.setenv("CORRAL_WORKER_RATE_LIMIT", "50/second")
    monkeypatch.setenv("CORRAL_CORS_ORIGINS", "https://a.example.com, http://localhost:5173")
    monkeypatch.setenv("CORRAL_MAX_JSON_BYTES", "1024")
    settings = ServerSettings()
    assert settings.rate_limit is None
    assert settings.worker_rate_limit == "50/second"
    assert settings.cors_origins == ["https://a.example.com", "http://localhost:5173"]
    assert settings.max_json_bytes == 1024


def test_a_bad_rate_in_the_environment_refuses_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_LOGIN_RATE_LIMIT", "ten a minute")
    with pytest.raises(ValidationError, match="CORRAL_LOGIN_RATE_LIMIT"):
        ServerSettings()


@pytest.mark.parametrize("origins", ["*", "https://a.example.com,*", "https://*.example.com"])
def test_a_wildcard_origin_is_refused(monkeypatch: pytest.MonkeyPatch, origins: str) -> None:
    monkeypatch.setenv("CORRAL_CORS_ORIGINS", origins)
    with pytest.raises(ValidationError, match="'\\*' is refused"):
        ServerSettings()


@pytest.mark.parametrize(
    "origin", ["app.example.com", "https://app.example.com/", "https://a.example.com/x", "ftp://a"]
)
def test_an_origin_that_no_browser_sends_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="look like https://host"):
        ServerSettings(cors_origins=[origin])


def test_max_json_bytes_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        ServerSettings(max_json_bytes=0)
