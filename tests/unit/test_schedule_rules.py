"""The pure rules of a schedule's ticks: cron parsing, time zones and DST, decisions."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from corral.domain.cron import Cron
from corral.domain.jobs import JobDraft, JobSpec
from corral.domain.schedules import (
    MISFIRE_GRACE,
    CatchUp,
    Overlap,
    Schedule,
    decide,
    jitter,
    restart_from,
    validate,
)
from corral.errors import InvalidInput

BERLIN = ZoneInfo("Europe/Berlin")


def _at(*args: int, tz: ZoneInfo = BERLIN) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


def _schedule(cron: str, start: float, **fields: object) -> Schedule:
    s = Schedule(
        id="s-1",
        name="n",
        owner_id="o",
        cron=cron,
        timezone="Europe/Berlin",
        job=JobDraft(spec=JobSpec(command="true"), priority=0),
        overlap=Overlap.ALLOW,
        catch_up=CatchUp.NONE,
        jitter_seconds=0,
        paused=False,
        created_at=start,
        updated_at=start,
        last_tick=start,
        next_fire_at=None,
    )
    return restart_from(dataclasses.replace(s, **fields), start)  # type: ignore[arg-type]


def test_five_and_six_field_expressions_are_accepted_others_refused() -> None:
    assert Cron.parse("*/5  * * * *", "UTC").expression == "*/5 * * * *"
    every_ten = Cron.parse("*/10 * * * * *", "UTC")
    assert every_ten.upcoming(1_800_000_000.0, 3) == [
        1_800_000_010.0,
        1_800_000_020.0,
        1_800_000_030.0,
    ]
    for bad in ("* * * *", "* * * * * * *", "61 * * * *", "@reboot", "not cron", "0 0 30 2 *"):
        with pytest.raises(InvalidInput) as err:
            Cron.parse(bad, "UTC")
        assert err.value.context["field"] == "cron"
    with pytest.raises(InvalidInput) as err:
        Cron.parse("* * * * *", "Mars/Olympus_Mons")
    assert err.value.context["field"] == "timezone"


def test_ticks_follow_the_time_zone() -> None:
    cron = Cron.parse("0 9 * * *", "Europe/Berlin")
    start = _at(2026, 7, 1, 12, 0)
    assert cron.next_after(start) == _at(2026, 7, 2, 9, 0)  # 07:00 UTC in summer


def test_a_daily_0230_job_runs_once_on_the_night_berlin_skips_0230() -> None:
    """Berlin jumps from 02:00 to 03:00 on 2026-03-29; croniter's rule: the skipped
    wall time fires once, at the first instant after the gap."""
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    ticks = cron.upcoming(_at(2026, 3, 28, 12, 0), 3)
    local = [datetime.fromtimestamp(t, BERLIN) for t in ticks]
    assert [(d.day, d.hour, d.minute) for d in local] == [(29, 3, 0), (30, 2, 30), (31, 2, 30)]
    # Deciding that night minute by minute fires exactly one job for the 29th.
    schedule = _schedule("30 2 * * *", _at(2026, 3, 28, 12, 0))
    fired: list[float] = []
    now = _at(2026, 3, 29, 0, 0)
    while now < _at(2026, 3, 29, 23, 0):
        tick = decide(schedule, now, busy=False)
        if tick is not None:
            fired += tick.fire
            schedule = dataclasses.replace(schedule, last_tick=tick.tick)
        now += 60
    assert fired == [_at(2026, 3, 29, 3, 0)]


def test_an_on_time_tick_fires_and_moves_the_cursor() -> None:
    s = _schedule("* * * * * *", 100.0)
    assert decide(s, 100.5, busy=False) is None  # nothing due yet
    tick = decide(s, 101.2, busy=False)
    assert tick is not None
    assert (tick.tick, tick.fire, tick.next_fire_at) == (101.0, (101.0,), 102.0)


def test_missed_ticks_are_skipped_or_caught_up_once() -> None:
    late = 105.0 + MISFIRE_GRACE + 0.5  # ticks 101..106 due; 106 on time, 101..105 missed
    none = decide(_schedule("* * * * * *", 100.0), late, busy=False)
    one = decide(_schedule("* * * * * *", 100.0, catch_up=CatchUp.ONE), late, busy=False)
    assert none is not None and none.fire == (106.0,) and none.tick == 106.0
    assert one is not None and one.fire == (105.0, 106.0)
    # Back between two ticks of a slow schedule: nothing on time, so only a catch-up.
    hourly = _schedule("0 * * * *", _at(2026, 1, 1, 0, 30))
    back = _at(2026, 1, 1, 3, 20)
    skipped = decide(hourly, back, busy=False)
    assert skipped is not None and skipped.fire == () and skipped.skipped == "missed"
    caught = decide(dataclasses.replace(hourly, catch_up=CatchUp.ONE), back, busy=False)
    assert caught is not None and caught.fire == (_at(2026, 1, 1, 3, 0),)


def test_overlap_rules_apply_only_while_busy() -> None:
    skip = _schedule("* * * * * *", 100.0, overlap=Overlap.SKIP)
    busy = decide(skip, 101.0, busy=True)
    assert busy is not None and busy.fire == () and busy.skipped == "overlap"
    cancel = _schedule("* * * * * *", 100.0, overlap=Overlap.CANCEL_PREVIOUS)
    replaced = decide(cancel, 101.0, busy=True)
    assert replaced is not None and replaced.fire == (101.0,) and replaced.cancel_previous


def test_jitter_is_the_same_everywhere_and_delays_the_job_not_the_tick() -> None:
    assert jitter("s-1", 160.0, 30) == jitter("s-1", 160.0, 30)
    assert 0 <= jitter("s-1", 160.0, 30) < 30
    s = _schedule("* * * * *", 100.0, jitter_seconds=30)
    delay = jitter("s-1", 120.0, 30)
    assert s.next_fire_at == 120.0 + delay
    assert decide(s, 120.0 + delay - 0.01, busy=False) is None
    tick = decide(s, 120.0 + delay, busy=False)
    assert tick is not None and tick.fire == (120.0,)


def test_schedule_fields_are_checked() -> None:
    with pytest.raises(InvalidInput):
        validate("", "* * * * *", "UTC", 0)
    with pytest.raises(InvalidInput):
        validate("n", "* * * * *", "UTC", -1)
    assert validate("n", "0 3 * * 1-5", "Asia/Tokyo", 10).expression == "0 3 * * 1-5"
