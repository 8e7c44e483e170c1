"""Jobs (mattermost_plugin.jobs) under the test kit: recurring once per interval across
instances, one-shot jobs persisted and fired once, start after OnActivate, stop on
OnDeactivate, the Go records' formats, and bad input."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import threading
from typing import Any, ClassVar

import pytest

from mattermost_plugin import (
    HookName,
    JobExistsError,
    JobRegistrationError,
    OneShotJob,
    Plugin,
    every,
    hook,
    one_shot,
)
from mattermost_plugin.jobs import format_time, parse_time
from mattermost_plugin.testing import FakeMattermost, StartPlugin

UTC = datetime.timezone.utc


class Ticker(Plugin):
    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.fired: list[OneShotJob] = []
        self.events: list[str] = []

    @hook(HookName.OnActivate)
    def activate(self) -> None:
        self.events.append("activate")

    @hook(HookName.OnDeactivate)
    def deactivate(self) -> None:
        self.events.append("deactivate")

    @every(datetime.timedelta(minutes=10))
    def tick(self) -> None:
        self.events.append("tick")
        self.ticks.append(self.jobs.now().timestamp())

    @one_shot("remind_")
    async def remind(self, job: OneShotJob) -> None:
        self.events.append(f"fired {job.key}")
        self.fired.append(job)


def test_recurring_runs_after_activation_then_once_per_interval(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost
) -> None:
    handle = mm_plugin(Ticker)
    plugin = handle.plugin
    assert plugin.events == ["activate", "tick"]  # jobs start once OnActivate returned
    start = plugin.ticks[0]
    handle.advance(599)
    assert len(plugin.ticks) == 1
    handle.advance(1)
    handle.advance(3600)  # an hour: six more runs, each at its own time
    assert [t - start for t in plugin.ticks] == [600.0 * i for i in range(8)]
    record = json.loads(mm_fake.kv["cron_tick"])
    assert parse_time(record["LastFinished"]) == plugin.ticks[-1]
    assert "mutex_cron_tick" not in mm_fake.kv  # the lock is released after each run


def test_recurring_runs_once_per_interval_across_instances(
    mm_fake: FakeMattermost,
) -> None:
    # Two instances of one plugin over one server: two servers of a cluster.
    with mm_fake.start(Ticker) as a, mm_fake.start(Ticker) as b:
        assert len(a.plugin.ticks) + len(b.plugin.ticks) == 1
        for _ in range(6):
            a.advance(300)
            b.advance(0)
        # 30 minutes: the runs at 0, 10, 20 and 30 minutes, whichever instance made them.
        assert len(a.plugin.ticks) + len(b.plugin.ticks) == 4
        times = sorted(a.plugin.ticks + b.plugin.ticks)
        assert all(later - earlier >= 600 for earlier, later in itertools.pairwise(times))


def test_recurring_reads_go_records(mm_plugin: StartPlugin, mm_fake: FakeMattermost) -> None:
    # A Go build of the plugin ran the job 5 minutes ago (Go's RFC 3339 with nanoseconds).
    now = mm_fake.clock.now_millis() / 1000
    last = datetime.datetime.fromtimestamp(now - 300, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    mm_fake.api.kv_set("cron_tick", json.dumps({"LastFinished": last + ".123456789Z"}).encode())
    handle = mm_plugin(Ticker)
    assert handle.plugin.ticks == []
    handle.advance(300)  # due 0.123456789 s later than that
    assert handle.plugin.ticks == []
    handle.advance(1)
    assert len(handle.plugin.ticks) == 1


def test_failing_recurring_job_is_logged_and_runs_next_interval(
    mm_plugin: StartPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(Plugin):
        runs = 0

        @every(60)
        async def flaky(self) -> None:
            type(self).runs += 1
            raise RuntimeError("upstream down")

    handle = mm_plugin(Failing)
    handle.advance(120)
    assert Failing.runs == 3
    failures = [r for r in caplog.records if r.name == "mattermost_plugin.jobs"]
    assert len(failures) == 3 and all("upstream down" in r.getMessage() for r in failures)


def test_one_shot_fires_once_at_its_time(mm_plugin: StartPlugin, mm_fake: FakeMattermost) -> None:
    handle = mm_plugin(Ticker)
    plugin = handle.plugin
    job = plugin.jobs.schedule_once("remind_1", datetime.timedelta(minutes=5), {"text": "tea"})
    assert plugin.jobs.list() == [job]
    assert plugin.jobs.get("remind_1") == job
    record = json.loads(mm_fake.kv["once_remind_1"])
    assert record == {
        "Key": "remind_1",
        "RunAt": format_time(job.timestamp),
        "Props": {"text": "tea"},
    }
    handle.advance(299)
    assert plugin.fired == []
    handle.advance(1)
    assert [(j.key, j.payload) for j in plugin.fired] == [("remind_1", {"text": "tea"})]
    assert plugin.fired[0].run_at == job.run_at
    handle.advance(3600)
    assert len(plugin.fired) == 1
    assert plugin.jobs.list() == [] and "once_remind_1" not in mm_fake.kv


def test_one_shot_fires_once_across_instances(mm_fake: FakeMattermost) -> None:
    with mm_fake.start(Ticker) as a, mm_fake.start(Ticker) as b:
        a.plugin.jobs.schedule_once("remind_x", datetime.timedelta(seconds=30), "x")
        b.advance(400)  # b learns of it by polling (every 5 minutes)...
        a.advance(0)  # ...and a knows it already
        fired = a.plugin.fired + b.plugin.fired
        assert [j.key for j in fired] == ["remind_x"]
        assert b.plugin.fired  # b polled first and fired it; a found it gone


def test_one_shot_survives_a_restart(mm_fake: FakeMattermost) -> None:
    with mm_fake.start(Ticker) as first:
        first.plugin.jobs.schedule_once("remind_r", datetime.timedelta(hours=1), [1, 2])
    with mm_fake.start(Ticker) as second:
        assert second.plugin.fired == []
        second.advance(3600)
        assert [(j.key, j.payload) for j in second.plugin.fired] == [("remind_r", [1, 2])]


def test_one_shot_overdue_at_start_fires_right_after_activation(mm_fake: FakeMattermost) -> None:
    with mm_fake.start(Ticker) as first:
        first.plugin.jobs.schedule_once("remind_late", datetime.timedelta(minutes=1))
    mm_fake.clock.advance(3600)  # the plugin was down when it was due
    with mm_fake.start(Ticker) as second:
        assert [j.key for j in second.plugin.fired] == ["remind_late"]


def test_cancel_reschedule_and_replace(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Ticker)
    jobs = handle.plugin.jobs
    jobs.schedule_once("remind_a", datetime.timedelta(minutes=1))
    with pytest.raises(JobExistsError, match="remind_a"):
        jobs.schedule_once("remind_a", datetime.timedelta(minutes=2))
    assert jobs.cancel("remind_a") is True
    assert jobs.cancel("remind_a") is False
    handle.advance(120)
    assert handle.plugin.fired == []
    jobs.schedule_once("remind_b", datetime.timedelta(minutes=1), "first")
    jobs.schedule_once("remind_b", datetime.timedelta(minutes=10), "second", replace=True)
    handle.advance(120)
    assert handle.plugin.fired == []
    handle.advance(600)
    assert [j.payload for j in handle.plugin.fired] == ["second"]


def test_reschedule_by_another_instance_is_followed(mm_fake: FakeMattermost) -> None:
    with mm_fake.start(Ticker) as a, mm_fake.start(Ticker) as b:
        a.plugin.jobs.schedule_once("remind_m", datetime.timedelta(minutes=1))
        b.plugin.jobs.schedule_once("remind_m", datetime.timedelta(minutes=30), replace=True)
        a.advance(120)  # a wakes at the old time, finds the new one, waits for it
        assert a.plugin.fired == [] and b.plugin.fired == []
        a.advance(1800)
        assert [j.key for j in a.plugin.fired + b.plugin.fired] == ["remind_m"]


def test_list_is_sorted_and_filtered(mm_plugin: StartPlugin) -> None:
    jobs = mm_plugin(Ticker).plugin.jobs
    now = jobs.now()
    jobs.schedule_once("remind_late", now + datetime.timedelta(hours=2))
    jobs.schedule_once("remind_soon", now + datetime.timedelta(minutes=2))
    assert [j.key for j in jobs.list()] == ["remind_soon", "remind_late"]
    assert [j.key for j in jobs.list("remind_s")] == ["remind_soon"]


def test_async_facade(mm_plugin: StartPlugin) -> None:
    class AsyncReminder(Ticker):
        @hook(HookName.OnActivate)
        async def activate_async(self) -> None:
            await self.ajobs.schedule_once("remind_async", 60, "a")
            self.listed = [j.key for j in await self.ajobs.list()]
            self.got = await self.ajobs.get("remind_async")
            with pytest.raises(JobExistsError):
                await self.ajobs.schedule_once("remind_async", 60)
            await self.ajobs.schedule_once("remind_gone", 60)
            self.cancelled = await self.ajobs.cancel("remind_gone")

    handle = mm_plugin(AsyncReminder)
    plugin = handle.plugin
    assert plugin.listed == ["remind_async"] and plugin.cancelled is True
    assert plugin.got is not None and plugin.got.payload == "a"
    handle.advance(60)
    assert [j.key for j in plugin.fired] == ["remind_async"]


def test_no_job_runs_after_deactivate(mm_fake: FakeMattermost) -> None:
    started = threading.Event()
    release = threading.Event()

    class Slow(Plugin):
        log: ClassVar[list[str]] = []

        @every(60)
        def slow(self) -> None:
            if self.log:  # the first run, at activation, is quick; the next one is slow
                started.set()
                assert release.wait(10)
            self.log.append("job done")

        @hook(HookName.OnDeactivate)
        def deactivate(self) -> None:
            self.log.append("deactivate")

    handle = mm_fake.start(Slow)
    assert Slow.log == ["job done"]
    # A run in flight when OnDeactivate comes is waited for, then the author's handler runs.
    runner = threading.Thread(target=handle.advance, args=(60,))
    runner.start()
    assert started.wait(10)
    stopper = threading.Thread(target=handle.stop)
    stopper.start()
    release.set()
    stopper.join(10)
    runner.join(10)
    assert not stopper.is_alive() and not runner.is_alive()
    assert Slow.log == ["job done", "job done", "deactivate"]


def test_a_run_waits_for_the_lock_another_server_holds(mm_fake: FakeMattermost) -> None:
    class Locked(Plugin):
        runs = 0

        @every(60)
        async def locked(self) -> None:
            type(self).runs += 1

        @one_shot()
        def once(self, job: OneShotJob) -> None:
            type(self).runs += 100

    # A server that crashed while running the jobs left their locks (15 s to live).
    mm_fake.api.kv_set_with_expiry("mutex_cron_locked", b"crashed-holder", 15)
    mm_fake.api.kv_set_with_expiry("mutex_soon", b"crashed-holder", 15)
    with mm_fake.start(Locked) as handle:
        handle.plugin.jobs.schedule_once("soon", 5)
        assert Locked.runs == 0  # the kit never waits in real time: the runs are retried
        handle.advance(14)
        assert Locked.runs == 0
        handle.advance(1)  # the locks expired: both run, once
        assert Locked.runs == 101
        handle.advance(59)
        assert Locked.runs == 101


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        every(0)
    with pytest.raises(TypeError, match="timedelta or seconds"):
        every("10m")  # type: ignore[arg-type]
    with pytest.raises(JobRegistrationError, match="letters"):
        every(10, name="a b")
    with pytest.raises(JobRegistrationError, match="declared twice"):

        class Twice(Plugin):
            @every(10, name="x")
            def one(self) -> None: ...

            @every(20, name="x")
            def two(self) -> None: ...

    with pytest.raises(JobRegistrationError, match="two handlers"):

        class TwoHandlers(Plugin):
            @one_shot("a")
            def one(self, job: OneShotJob) -> None: ...

            @one_shot("a")
            def two(self, job: OneShotJob) -> None: ...


def test_schedule_once_checks_its_input(mm_plugin: StartPlugin) -> None:
    jobs = mm_plugin(Ticker).plugin.jobs
    with pytest.raises(ValueError, match="non-empty"):
        jobs.schedule_once("", 10)
    with pytest.raises(ValueError, match="no @one_shot handler"):
        jobs.schedule_once("other_1", 10)
    with pytest.raises(ValueError, match="time zone"):
        jobs.schedule_once("remind_1", datetime.datetime(2030, 1, 1))
    with pytest.raises(TypeError, match="aware datetime"):
        jobs.schedule_once("remind_1", "tomorrow")
    with pytest.raises(TypeError, match="JSON"):
        jobs.schedule_once("remind_1", 10, {1, 2})
    with pytest.raises(ValueError, match="limit is 10000"):
        jobs.schedule_once("remind_1", 10, "x" * 10_001)
    assert jobs.list() == []


def test_unreadable_record_is_reported_not_fired(
    mm_plugin: StartPlugin, mm_fake: FakeMattermost, caplog: pytest.LogCaptureFixture
) -> None:
    mm_fake.api.kv_set("once_remind_bad", b'{"Key":"remind_bad","RunAt":"soon"}')
    handle = mm_plugin(Ticker)
    assert handle.plugin.fired == [] and handle.plugin.jobs.list() == []
    assert "cannot read" in caplog.text


def test_time_format_round_trip() -> None:
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1.5) == "1970-01-01T00:00:01.5Z"
    assert parse_time("1970-01-01T01:00:00+01:00") == 0
    assert parse_time("1970-01-01T00:00:00.000000001Z") == pytest.approx(1e-9)
    assert parse_time("0001-01-01T00:00:00Z") is None  # Go's zero time: never
    for bad in ("", "2020-13-01T00:00:00Z", "yesterday", 5, None):
        assert parse_time(bad) is None


def test_advance_refuses_going_back(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Ticker)
    with pytest.raises(ValueError, match=">= 0"):
        handle.advance(-1)


def test_async_advance(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Ticker)

    async def go() -> None:
        await handle.aadvance(datetime.timedelta(minutes=10))

    asyncio.run(go())
    assert len(handle.plugin.ticks) == 2


def test_the_scheduler_loop_on_the_real_clock(mm_fake: FakeMattermost) -> None:
    """Outside the test kit the scheduler runs its own loop, waking when something is due."""
    from mattermost_plugin.jobs import JobScheduler, SystemJobClock

    class Fast(Plugin):
        ticks = 0
        fired: ClassVar[list[str]] = []

        @every(0.05)
        async def tick(self) -> None:
            type(self).ticks += 1

        @one_shot()
        def fire(self, job: OneShotJob) -> None:
            self.fired.append(job.key)

    async def main() -> tuple[int, int]:
        plugin = Fast.create(api=mm_fake.api, aapi=mm_fake.aapi, plugin_id=mm_fake.plugin_id)
        assert Fast._job_table is not None
        scheduler = JobScheduler(plugin, Fast._job_table, clock=SystemJobClock())
        plugin._job_scheduler = scheduler

        async def run(handler: Any, *args: Any) -> Any:  # the dispatcher's, in short
            if asyncio.iscoroutinefunction(handler):
                return await handler(*args)
            return await asyncio.to_thread(handler, *args)

        await scheduler.start(run)
        await plugin.ajobs.schedule_once("soon", 0.1 + SystemJobClock().now())
        await asyncio.sleep(0.4)
        await scheduler.stop()
        at_stop = Fast.ticks
        await asyncio.sleep(0.15)
        return at_stop, Fast.ticks

    at_stop, later = asyncio.run(main())
    assert 4 <= at_stop <= 9  # every 50 ms for 400 ms, give or take the scheduling
    assert later == at_stop  # nothing runs after stop returned
    assert Fast.fired == ["soon"]


def test_the_scheduler_loop_fires_jobs_stored_before_it_started(mm_fake: FakeMattermost) -> None:
    """A job found by the first poll (stored before a restart) fires without anything else
    waking the loop: the poll itself wakes it."""
    from mattermost_plugin.jobs import JobScheduler, SystemJobClock

    class OnlyOneShot(Plugin):
        fired: ClassVar[list[str]] = []

        @one_shot()
        async def fire(self, job: OneShotJob) -> None:
            self.fired.append(job.key)

    async def main() -> None:
        plugin = OnlyOneShot.create(api=mm_fake.api, aapi=mm_fake.aapi, plugin_id="p")
        assert OnlyOneShot._job_table is not None
        scheduler = JobScheduler(plugin, OnlyOneShot._job_table, clock=SystemJobClock())
        plugin._job_scheduler = scheduler
        overdue = {"Key": "stored", "RunAt": format_time(SystemJobClock().now() - 1), "Props": 1}
        await mm_fake.aapi.kv_set("once_stored", json.dumps(overdue).encode())

        async def run(handler: Any, *args: Any) -> Any:
            return await handler(*args)

        await scheduler.start(run)
        for _ in range(100):
            if OnlyOneShot.fired:
                break
            await asyncio.sleep(0.01)
        await scheduler.stop()

    asyncio.run(main())
    assert OnlyOneShot.fired == ["stored"]


def test_stop_cancels_an_async_run_that_outlives_its_grace(
    mm_fake: FakeMattermost, caplog: pytest.LogCaptureFixture
) -> None:
    from mattermost_plugin.jobs import JobScheduler, SystemJobClock

    class Stuck(Plugin):
        cancelled = False

        @every(60)
        async def stuck(self) -> None:
            try:
                await asyncio.Event().wait()  # never set
            except asyncio.CancelledError:
                type(self).cancelled = True
                raise

    async def main() -> float:
        plugin = Stuck.create(api=mm_fake.api, aapi=mm_fake.aapi, plugin_id="p")
        assert Stuck._job_table is not None
        scheduler = JobScheduler(plugin, Stuck._job_table, clock=SystemJobClock(), stop_timeout=0.2)

        async def run(handler: Any, *args: Any) -> Any:
            return await handler(*args)

        await scheduler.start(run)
        await asyncio.sleep(0.1)  # the run is in its handler
        loop = asyncio.get_running_loop()
        began = loop.time()
        await scheduler.stop()
        return loop.time() - began

    took = asyncio.run(main())
    assert 0.2 <= took < 2
    assert Stuck.cancelled
    assert "still running 0.2 s after OnDeactivate began" in caplog.text


def test_replace_waits_for_a_run_of_the_old_job(mm_fake: FakeMattermost) -> None:
    """A job rescheduled while its old run is in progress (a Snooze clicked the moment the
    reminder arrives) is not deleted by that run: replace takes the job's lock."""
    entered, release = threading.Event(), threading.Event()

    class Slow(Plugin):
        fired: ClassVar[list[Any]] = []

        @one_shot()
        def fire(self, job: OneShotJob) -> None:
            self.fired.append(job.payload)
            if job.payload == "old":
                entered.set()
                assert release.wait(10)

    with mm_fake.start(Slow) as handle:
        handle.plugin.jobs.schedule_once("k", 10, "old")
        runner = threading.Thread(target=handle.advance, args=(10,))
        runner.start()
        assert entered.wait(10)
        jobs = handle.plugin.jobs
        replacer = threading.Thread(
            target=jobs.schedule_once, args=("k", 100, "new"), kwargs={"replace": True}
        )
        replacer.start()
        replacer.join(0.3)
        assert replacer.is_alive()  # waiting for the old run's lock
        release.set()
        runner.join(10)
        replacer.join(10)
        job = handle.plugin.jobs.get("k")
        assert job is not None and job.payload == "new"
        handle.advance(100)
        assert Slow.fired == ["old", "new"]
