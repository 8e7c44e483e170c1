"""Scheduled jobs: recurring work run once per interval across a cluster, and persisted
one-shot jobs that survive restarts and fire once.

::

    class Reports(Plugin):
        @every(timedelta(hours=1))
        def hourly_report(self) -> None:          # def or async def
            ...

        @one_shot("remind_")                       # one-shot jobs whose key starts with it
        async def remind(self, job: OneShotJob) -> None:
            await self.aapi.create_post(Post(channel_id=job.payload["channel"], ...))

        @command("later")
        def later(self, call: CommandCall) -> str:
            self.jobs.schedule_once(f"remind_{call.user_id}", timedelta(minutes=10), {...})
            return "OK"

**Recurring jobs** (``@every``) follow Go's ``pluginapi/cluster.Schedule``: each run takes
the cluster mutex ``cron_<name>`` (KV key ``mutex_cron_<name>``), reads the last-run record
``cron_<name>`` (``{"LastFinished": "<RFC 3339 time>"}``), runs the job only if at least
``interval`` passed since the last run finished on *any* server, then records the finish
time. So with several servers (several plugin processes sharing one database) the job runs
once per interval, and a Go build of the same plugin shares the record.

**One-shot jobs** (``self.jobs.schedule_once(key, at, payload)``) follow Go's
``JobOnceScheduler``: the job is stored under ``once_<key>`` as
``{"Key", "RunAt", "Props"}``; every server learns of it (at start, when scheduled locally,
and by polling every 5 minutes); when it is due, each server takes the mutex
``<key>`` (KV key ``mutex_<key>``, as Go names it), and the first to get it runs the
``@one_shot`` handler and deletes the record; the others find it gone. A job whose
``RunAt`` changed meanwhile (rescheduled) is left for the new time. A handler that raises
is logged and the job is still deleted: a one-shot job fires once.

Jobs start after ``OnActivate`` succeeds and stop on ``OnDeactivate`` before the plugin's
own handler runs: runs in flight are waited for, so no job runs after ``OnDeactivate``
returns. Sync handlers run in worker threads and async ones on the event loop, as hook
handlers do. Time comes from a ``JobClock``; the test kit's drives jobs with a fake one
(``handle.advance(seconds=...)``), so tests never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._marks import JOB_ATTR
from .kv import AsyncKVMutex, AsyncKVStore, KVStore, encode_json

if TYPE_CHECKING:
    from .plugin import Plugin

__all__ = [
    "AsyncJobs",
    "JobClock",
    "JobExistsError",
    "JobRegistrationError",
    "JobScheduler",
    "Jobs",
    "OneShotJob",
    "SystemJobClock",
    "every",
    "one_shot",
]

log = logging.getLogger("mattermost_plugin.jobs")

# The KV namespaces of Go's pluginapi/cluster, so a Go and a Python build of one plugin
# share their records during a rolling upgrade.
CRON_PREFIX = "cron_"
ONCE_PREFIX = "once_"
# Go's JobOnceScheduler limits a job's props to this many bytes of JSON (they are kept in
# memory by every server until the job fires).
PAYLOAD_LIMIT = 10_000
# How often a server looks for one-shot jobs scheduled by the others (Go: 5 minutes).
DEFAULT_POLL_INTERVAL = 300.0
# After a failing KV read, wait this long before trying again, up to MAX_FAILS times in a
# row before leaving the job to the next poll (Go: 1 s, 3).
RETRY_AFTER_FAILURE = 1.0
MAX_FAILS = 3
# How long OnDeactivate waits for runs in flight before cancelling async ones: within the
# bridge's 30 s hook limit, with time left for the plugin's own OnDeactivate handler.
DEFAULT_STOP_TIMEOUT = 20.0
# The KV mutex of a run: held while the job runs, refreshed by the mutex itself.
JOB_MUTEX_TTL = 15.0

F = TypeVar("F", bound=Callable[..., Any])
Runner = Callable[..., Awaitable[Any]]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class JobRegistrationError(ValueError):
    """An ``@every`` or ``@one_shot`` declaration is malformed or clashes with another."""


class JobExistsError(ValueError):
    """``schedule_once`` of a key that is already scheduled (pass ``replace=True``)."""


# --- time -------------------------------------------------------------------------------


class JobClock(Protocol):
    """Wall time as the scheduler sees it; the test kit passes a fake one."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def await_event(self, event: asyncio.Event, seconds: float) -> bool:
        """Pause until ``event`` is set (True) or ``seconds`` passed (False)."""
        ...


class SystemJobClock:
    """The real clock: ``time.time`` and ``asyncio.wait_for``."""

    def now(self) -> float:
        return time.time()

    async def await_event(self, event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            return False
        return True


def format_time(seconds: float) -> str:
    """``seconds`` since the epoch as Go's ``time.Time`` marshals to JSON (RFC 3339, UTC)."""
    dt = _EPOCH + datetime.timedelta(seconds=seconds)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))$"
)


def parse_time(text: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 time as Go writes it; None for Go's zero
    time (``0001-01-01T00:00:00Z``, "never") and for anything that is not such a time."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    try:
        dt = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    seconds = (dt - _EPOCH).total_seconds()
    if m.group(7):
        seconds += int(m.group(7)[:9].ljust(9, "0")) / 1e9
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    return seconds


def _seconds(value: datetime.timedelta | float, what: str) -> float:
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a timedelta or seconds, got {value!r}")
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{what} must be a positive, finite duration, got {value!r}")
    return float(seconds)


# --- declarations -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EverySpec:
    """What ``@every`` recorded on a function."""

    name: str
    interval: float


@dataclasses.dataclass(frozen=True)
class OneShotSpec:
    """What ``@one_shot`` recorded on a function."""

    prefix: str


def every(interval: datetime.timedelta | float, *, name: str = "") -> Callable[[F], F]:
    """Run the decorated ``Plugin`` method every ``interval`` (a timedelta or seconds), on
    one server of the cluster per interval. ``name`` (default: the method's name) keys the
    job's last-run record and mutex; renaming it starts a fresh record."""
    seconds = _seconds(interval, "@every interval")
    if name and not _NAME.match(name):
        raise JobRegistrationError(
            f"@every(name={name!r}): use letters, digits, '_', '.' and '-' only"
        )

    def mark(fn: F) -> F:
        if not callable(fn):
            raise JobRegistrationError("@every must decorate a function")
        if getattr(fn, JOB_ATTR, None) is not None:
            raise JobRegistrationError(f"{fn.__qualname__} is already a job handler")
        setattr(fn, JOB_ATTR, EverySpec(name or fn.__name__, seconds))
        return fn

    return mark


def one_shot(prefix: str = "") -> Callable[[F], F]:
    """Make the decorated ``Plugin`` method the handler of one-shot jobs whose key starts
    with ``prefix`` (the longest matching prefix wins; ``""`` takes every other key). It
    gets a ``OneShotJob``."""
    if not isinstance(prefix, str):
        raise JobRegistrationError(f"@one_shot expects a key prefix string, got {prefix!r}")

    def mark(fn: F) -> F:
        if not callable(fn):
            raise JobRegistrationError("@one_shot must decorate a function")
        if getattr(fn, JOB_ATTR, None) is not None:
            raise JobRegistrationError(f"{fn.__qualname__} is already a job handler")
        setattr(fn, JOB_ATTR, OneShotSpec(prefix))
        return fn

    return mark


@dataclasses.dataclass(frozen=True)
class OneShotJob:
    """A scheduled one-shot job: its ``key``, when it is due and its JSON ``payload``."""

    key: str
    run_at: datetime.datetime
    payload: Any = None

    @property
    def timestamp(self) -> float:
        return self.run_at.timestamp()


class JobTable:
    """The declared jobs of one plugin class."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.recurring: dict[str, tuple[str, EverySpec]] = {}  # job name -> (attr, spec)
        self.handlers: dict[str, str] = {}  # key prefix -> attr

    @classmethod
    def collect(cls, plugin_cls: type) -> JobTable | None:
        found: dict[str, EverySpec | OneShotSpec] = {}
        for klass in reversed(plugin_cls.__mro__):
            for attr, value in vars(klass).items():
                spec = getattr(value, JOB_ATTR, None)
                if isinstance(spec, (EverySpec, OneShotSpec)):
                    found[attr] = spec
                elif attr in found:
                    del found[attr]  # overridden by an undecorated attribute
        if not found:
            return None
        table = cls(plugin_cls.__qualname__)
        for attr, spec in found.items():
            if isinstance(spec, EverySpec):
                if spec.name in table.recurring:
                    other = table.recurring[spec.name][0]
                    raise JobRegistrationError(
                        f"{table.owner}: recurring job {spec.name!r} is declared twice "
                        f"({other} and {attr})"
                    )
                table.recurring[spec.name] = (attr, spec)
            else:
                if spec.prefix in table.handlers:
                    raise JobRegistrationError(
                        f"{table.owner}: one-shot jobs with prefix {spec.prefix!r} have two "
                        f"handlers ({table.handlers[spec.prefix]} and {attr})"
                    )
                table.handlers[spec.prefix] = attr
        return table

    def handler_for(self, key: str) -> str | None:
        best: str | None = None
        for prefix in self.handlers:
            if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return None if best is None else self.handlers[best]


# --- one-shot records -------------------------------------------------------------------


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"a one-shot job needs a non-empty string key, got {key!r}")
    return key


def _run_at(at: datetime.datetime | datetime.timedelta | float, now: float) -> float:
    if isinstance(at, datetime.datetime):
        if at.tzinfo is None:
            raise ValueError(
                f"schedule_once: {at!r} has no time zone; pass an aware datetime "
                f"(datetime.now(timezone.utc) + ...) or a timedelta from now"
            )
        return at.timestamp()
    if isinstance(at, datetime.timedelta):
        return now + at.total_seconds()
    if isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at):
        return float(at)  # seconds since the epoch
    raise TypeError(
        f"schedule_once: 'at' must be an aware datetime, a timedelta or epoch seconds, got {at!r}"
    )


def _record(key: str, run_at: float, payload: Any) -> dict[str, Any]:
    record = {"Key": key, "RunAt": format_time(run_at), "Props": payload}
    size = len(encode_json(key, payload))
    if size > PAYLOAD_LIMIT:
        raise ValueError(
            f"the payload of one-shot job {key!r} is {size} bytes of JSON; "
            f"the limit is {PAYLOAD_LIMIT} (store large data in the KV store and pass its key)"
        )
    return record


def _job_from_record(key: str, record: Any) -> OneShotJob | None:
    if not isinstance(record, dict):
        return None
    run_at = parse_time(record.get("RunAt"))
    if run_at is None:
        return None
    when = _EPOCH + datetime.timedelta(seconds=run_at)
    return OneShotJob(key, when, record.get("Props"))


def _read_job(key: str, raw: Any) -> OneShotJob | None:
    job = _job_from_record(key, raw)
    if job is None and raw is not None:
        log.error("one-shot job %r has a record this SDK cannot read: %r", key, raw)
    return job


# --- the scheduler ----------------------------------------------------------------------


@dataclasses.dataclass
class _Recurring:
    name: str
    attr: str
    interval: float
    next_at: float = 0.0  # check at once on start, as Go's Schedule does
    running: bool = False


class JobScheduler:
    """Runs one plugin instance's jobs on its event loop.

    ``start`` (after OnActivate) launches a loop task that wakes at the next due time;
    ``manual=True`` (the test kit) launches nothing: ``run_due()`` runs what is due now and
    ``next_due()`` says when the next thing is due.
    """

    def __init__(
        self,
        plugin: Plugin,
        table: JobTable,
        *,
        clock: JobClock | None = None,
        manual: bool = False,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self.plugin = plugin
        self.table = table
        self.clock: JobClock = clock or SystemJobClock()
        self.manual = manual
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self._run: Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_handler: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._once: dict[str, float] = {}  # key -> run_at, as last known
        self._once_running: set[str] = set()
        self._fails: dict[str, int] = {}
        self._next_poll = 0.0
        self._recurring = [
            _Recurring(name, attr, spec.interval) for name, (attr, spec) in table.recurring.items()
        ]
        self.started = False
        self.stopped = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, run: Runner) -> None:
        if self.started:
            return
        self._run = run
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.started, self.stopped = True, False
        now = self.clock.now()
        self._next_poll = now  # learn the stored one-shot jobs first thing
        for job in self._recurring:
            job.next_at = now
        if not self.manual:
            self._main = self._loop.create_task(self._main_loop(), name="mmplug-jobs")

    async def stop(self) -> None:
        """Stop scheduling and wait for runs in flight (see the module docstring)."""
        if not self.started or self.stopped:
            return
        self.stopped = True
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
            self._main = None
        # Runs still waiting for a mutex or reading a record are cancelled; runs inside a
        # handler are let finish (a sync handler in a thread cannot be interrupted).
        for task in list(self._tasks):
            if task not in self._in_handler:
                task.cancel()
        pending = list(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.stop_timeout)
            for task in still:
                log.error(
                    "job %s still running %g s after OnDeactivate began; cancelling it",
                    task.get_name(),
                    self.stop_timeout,
                )
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)

    def notify(self, key: str, run_at: float | None) -> None:
        """A one-shot job was scheduled (``run_at``) or cancelled (None) by this process;
        thread-safe."""
        self.notify_local(key, run_at)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    # --- what is due --------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The earliest time something is due (a recurring check, a one-shot job, a poll)."""
        if not self.started or self.stopped:
            return None
        times = [j.next_at for j in self._recurring if not j.running]
        with self._lock:
            times.extend(t for k, t in self._once.items() if k not in self._once_running)
        if self.table.handlers:
            times.append(self._next_poll)
        return min(times) if times else None

    async def run_due(self) -> None:
        """Start every run that is due now and wait for them to finish."""
        tasks = self._start_due()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start_due(self) -> list[asyncio.Task[None]]:
        if not self.started or self.stopped or self._loop is None:
            return []
        now = self.clock.now()
        started: list[asyncio.Task[None]] = []
        if self.table.handlers and self._next_poll <= now:
            self._next_poll = now + self.poll_interval
            started.append(self._spawn(self._poll(), "poll"))
        for job in self._recurring:
            if not job.running and job.next_at <= now:
                job.running = True
                started.append(self._spawn(self._run_recurring(job), f"every:{job.name}"))
        with self._lock:
            due = [k for k, t in self._once.items() if t <= now and k not in self._once_running]
            self._once_running.update(due)
        for key in due:
            started.append(self._spawn(self._run_once(key), f"once:{key}"))
        return started

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        assert self._loop is not None
        task: asyncio.Task[None] = self._loop.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _main_loop(self) -> None:
        assert self._wake is not None
        while not self.stopped:
            self._start_due()
            due = self.next_due()
            wait = self.poll_interval if due is None else due - self.clock.now()
            if wait > 0:
                await self.clock.await_event(self._wake, wait)
            else:
                await asyncio.sleep(0)  # let the runs just started take their turn
            self._wake.clear()

    async def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- runs ---------------------------------------------------------------------------

    async def _call(self, attr: str, *args: Any) -> None:
        assert self._run is not None
        task = asyncio.current_task()
        handler = getattr(self.plugin, attr)
        if task is not None:
            self._in_handler.add(task)
        try:
            result = await self._run(handler, *args)
            if inspect.isawaitable(result):
                await result
        finally:
            if task is not None:
                self._in_handler.discard(task)

    @contextlib.asynccontextmanager
    async def _held(self, name: str) -> AsyncIterator[bool]:
        """Hold the cluster mutex ``name`` for a run; yields False when the run must wait.

        The runtime waits for the lock (another server is running the job). The test kit
        (``manual``) tries once: its time is fake, so waiting in real time for a lock that
        expires in fake time would never end; the run is tried again a second later in fake
        time instead, as ``advance`` moves it.
        """
        mutex = AsyncKVMutex(self.plugin.aapi, name, ttl=JOB_MUTEX_TTL)
        if self.manual:
            if not await mutex.try_acquire():
                yield False
                return
        else:
            await mutex.acquire()
        try:
            yield True
        finally:
            await mutex.release()

    def _where(self, attr: str) -> str:
        return f"{type(self.plugin).__name__}.{attr}"

    async def _run_recurring(self, job: _Recurring) -> None:
        key = CRON_PREFIX + job.name
        kv = AsyncKVStore(self.plugin.aapi)
        try:
            async with self._held(key) as held:
                if not held:
                    job.next_at = self.clock.now() + RETRY_AFTER_FAILURE
                    return
                try:
                    record = await kv.get(key)
                except Exception as e:
                    log.error("job %s: reading its last run failed, retrying: %s", job.name, e)
                    job.next_at = self.clock.now() + min(job.interval, RETRY_AFTER_FAILURE)
                    return
                last = parse_time(record.get("LastFinished")) if isinstance(record, dict) else None
                now = self.clock.now()
                if last is not None and now - last < job.interval:
                    job.next_at = last + job.interval  # another server ran it
                    return
                if self.stopped:
                    return
                try:
                    await self._call(job.attr)
                except Exception as e:
                    log.error(
                        "recurring job %s (%s) failed: %s",
                        job.name,
                        self._where(job.attr),
                        e,
                        exc_info=e,
                    )
                finished = self.clock.now()
                job.next_at = finished + job.interval
                try:
                    await kv.set(key, {"LastFinished": format_time(finished)})
                except Exception as e:
                    log.error("job %s: recording its run failed: %s", job.name, e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the mutex's store failed: try again shortly
            log.error("job %s: taking its cluster lock failed: %s", job.name, e)
            job.next_at = self.clock.now() + min(job.interval, RETRY_AFTER_FAILURE)
        finally:
            job.running = False
            await self._wake_up()

    async def _run_once(self, key: str) -> None:
        kv = AsyncKVStore(self.plugin.aapi)
        store_key = ONCE_PREFIX + key
        with self._lock:
            expected = self._once.get(key)
        try:
            async with self._held(key) as held:
                if not held:
                    self.notify_local(key, self.clock.now() + RETRY_AFTER_FAILURE)
                    return
                try:
                    raw = await kv.get(store_key)
                except Exception as e:
                    self._failed(key, e)
                    return
                self._fails.pop(key, None)
                job = _read_job(key, raw)
                if job is None:
                    self.notify_local(key, None)  # cancelled, or fired by another server
                    return
                if expected is None or abs(job.timestamp - expected) > 1e-3:
                    self.notify_local(key, job.timestamp)  # rescheduled: wait for the new time
                    return
                attr = self.table.handler_for(key)
                if attr is None:
                    log.error(
                        "one-shot job %r is due but %s has no @one_shot handler for its key; "
                        "left in the store",
                        key,
                        self.table.owner,
                    )
                    self.notify_local(key, None)
                    return
                if self.stopped:
                    return
                try:
                    await self._call(attr, job)
                except Exception as e:
                    log.error(
                        "one-shot job %r (%s) failed; it is not retried: %s",
                        key,
                        self._where(attr),
                        e,
                        exc_info=e,
                    )
                try:
                    await kv.delete(store_key)
                except Exception as e:
                    log.error("one-shot job %r ran but deleting its record failed: %s", key, e)
                self.notify_local(key, None)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failed(key, e)
        finally:
            with self._lock:
                self._once_running.discard(key)
            await self._wake_up()

    def notify_local(self, key: str, run_at: float | None) -> None:
        """Record what is known of a one-shot job (None: nothing to run) without waking the
        loop (the caller is on it, or wakes it)."""
        with self._lock:
            if run_at is None:
                self._once.pop(key, None)
            else:
                self._once[key] = run_at

    def _failed(self, key: str, error: Exception) -> None:
        fails = self._fails.get(key, 0) + 1
        self._fails[key] = fails
        if fails >= MAX_FAILS:
            log.error(
                "one-shot job %r: the store failed %d times in a row (%s); "
                "trying again at the next poll",
                key,
                fails,
                error,
            )
            self._fails.pop(key, None)
            self.notify_local(key, None)
        else:
            log.warning("one-shot job %r: the store failed, retrying: %s", key, error)
            self.notify_local(key, self.clock.now() + RETRY_AFTER_FAILURE)

    async def _poll(self) -> None:
        """Learn the one-shot jobs in the store (scheduled here before a restart, or by
        another server)."""
        kv = AsyncKVStore(self.plugin.aapi)
        try:
            keys = await kv.list_keys(prefix=ONCE_PREFIX)
            found: dict[str, float] = {}
            for store_key in keys:
                key = store_key[len(ONCE_PREFIX) :]
                try:
                    job = _read_job(key, await kv.get(store_key))
                except Exception as e:
                    log.error("one-shot job %r: reading it failed: %s", key, e)
                    continue
                if job is not None:
                    found[key] = job.timestamp
        except Exception as e:
            log.error("looking for scheduled one-shot jobs failed: %s", e)
            return
        with self._lock:
            for key, run_at in found.items():
                if key not in self._once_running:
                    self._once[key] = run_at
        await self._wake_up()  # the main loop's wait was computed without these jobs


# --- the author's facades -----------------------------------------------------------------


class Jobs:
    """One-shot jobs from sync code (``self.jobs``): schedule, cancel, list."""

    def __init__(self, plugin: Plugin) -> None:
        self._plugin = plugin
        self._kv = KVStore(plugin.api)

    def _now(self) -> float:
        return _scheduler_clock(self._plugin).now()

    def now(self) -> datetime.datetime:
        """Now (UTC) on the clock jobs run on: the test kit's fake clock in tests."""
        return _EPOCH + datetime.timedelta(seconds=self._now())

    def schedule_once(
        self,
        key: str,
        at: datetime.datetime | datetime.timedelta | float,
        payload: Any = None,
        *,
        replace: bool = False,
    ) -> OneShotJob:
        """Store a job that runs the ``@one_shot`` handler for ``key`` once, at ``at`` (an
        aware datetime, a timedelta from now, or epoch seconds); ``payload`` is JSON. A key
        already scheduled raises ``JobExistsError`` unless ``replace=True``."""
        key = _check_key(key)
        _check_handler(self._plugin, key)
        run_at = _run_at(at, self._now())
        record = _record(key, run_at, payload)
        if replace:
            # Under the job's lock, as Go's saveMetadata: a run of the old job in progress
            # finishes (and deletes its record) before the new record is written.
            with self._kv.mutex(key, ttl=JOB_MUTEX_TTL):
                self._kv.set(ONCE_PREFIX + key, record)
        elif not self._kv.compare_and_set(ONCE_PREFIX + key, None, record):
            raise JobExistsError(f"one-shot job {key!r} is already scheduled")
        _notify(self._plugin, key, run_at)
        job = _job_from_record(key, record)
        assert job is not None
        return job

    def cancel(self, key: str) -> bool:
        """Remove a scheduled job; True if it was scheduled (and had not fired)."""
        store_key = ONCE_PREFIX + _check_key(key)
        with self._kv.mutex(key, ttl=JOB_MUTEX_TTL):  # the job's own lock, as Go's Cancel
            existed = self._kv.get(store_key) is not None
            if existed:
                self._kv.delete(store_key)
        _notify(self._plugin, key, None)
        return existed

    def get(self, key: str) -> OneShotJob | None:
        """The scheduled job ``key``, or None."""
        key = _check_key(key)
        return _read_job(key, self._kv.get(ONCE_PREFIX + key))

    def list(self, prefix: str = "") -> list[OneShotJob]:
        """Every scheduled job whose key starts with ``prefix``, earliest first."""
        jobs = []
        for store_key in self._kv.list_keys(prefix=ONCE_PREFIX + prefix):
            key = store_key[len(ONCE_PREFIX) :]
            job = _read_job(key, self._kv.get(store_key))
            if job is not None:
                jobs.append(job)
        return sorted(jobs, key=lambda j: (j.run_at, j.key))


class AsyncJobs:
    """``Jobs`` for async code (``self.ajobs``)."""

    def __init__(self, plugin: Plugin) -> None:
        self._plugin = plugin
        self._kv = AsyncKVStore(plugin.aapi)

    def now(self) -> datetime.datetime:
        """See ``Jobs.now``."""
        return _EPOCH + datetime.timedelta(seconds=_scheduler_clock(self._plugin).now())

    async def schedule_once(
        self,
        key: str,
        at: datetime.datetime | datetime.timedelta | float,
        payload: Any = None,
        *,
        replace: bool = False,
    ) -> OneShotJob:
        """See ``Jobs.schedule_once``."""
        key = _check_key(key)
        _check_handler(self._plugin, key)
        run_at = _run_at(at, _scheduler_clock(self._plugin).now())
        record = _record(key, run_at, payload)
        if replace:
            async with self._kv.mutex(key, ttl=JOB_MUTEX_TTL):
                await self._kv.set(ONCE_PREFIX + key, record)
        elif not await self._kv.compare_and_set(ONCE_PREFIX + key, None, record):
            raise JobExistsError(f"one-shot job {key!r} is already scheduled")
        _notify(self._plugin, key, run_at)
        job = _job_from_record(key, record)
        assert job is not None
        return job

    async def cancel(self, key: str) -> bool:
        """See ``Jobs.cancel``."""
        store_key = ONCE_PREFIX + _check_key(key)
        async with self._kv.mutex(key, ttl=JOB_MUTEX_TTL):
            existed = await self._kv.get(store_key) is not None
            if existed:
                await self._kv.delete(store_key)
        _notify(self._plugin, key, None)
        return existed

    async def get(self, key: str) -> OneShotJob | None:
        """See ``Jobs.get``."""
        key = _check_key(key)
        return _read_job(key, await self._kv.get(ONCE_PREFIX + key))

    async def list(self, prefix: str = "") -> list[OneShotJob]:
        """See ``Jobs.list``."""
        jobs = []
        for store_key in await self._kv.list_keys(prefix=ONCE_PREFIX + prefix):
            key = store_key[len(ONCE_PREFIX) :]
            job = _read_job(key, await self._kv.get(store_key))
            if job is not None:
                jobs.append(job)
        return sorted(jobs, key=lambda j: (j.run_at, j.key))


def _check_handler(plugin: Plugin, key: str) -> None:
    table = type(plugin)._job_table
    if table is None or table.handler_for(key) is None:
        raise ValueError(
            f"{type(plugin).__qualname__} has no @one_shot handler for job key {key!r} "
            f"(declare one with @one_shot(prefix) on a method)"
        )


def _scheduler_clock(plugin: Plugin) -> JobClock:
    scheduler = plugin._job_scheduler
    if scheduler is not None:
        return scheduler.clock
    return plugin._job_clock or SystemJobClock()


def _notify(plugin: Plugin, key: str, run_at: float | None) -> None:
    scheduler = plugin._job_scheduler
    if scheduler is not None:
        scheduler.notify(key, run_at)


# --- hook steps -----------------------------------------------------------------------------


def scheduler_of(plugin: Plugin) -> JobScheduler | None:
    table = type(plugin)._job_table
    if table is None:
        return None
    if plugin._job_scheduler is None:
        plugin._job_scheduler = JobScheduler(
            plugin, table, clock=plugin._job_clock, manual=plugin._jobs_manual
        )
    return plugin._job_scheduler


async def on_activate(
    plugin: Plugin, run: Runner, then: Callable[..., Awaitable[Any]] | None, *args: Any
) -> Any:
    """The ``OnActivate`` step: the plugin's own handler, then the jobs start."""
    result = None if then is None else await then(*args)
    scheduler = scheduler_of(plugin)
    if scheduler is not None:
        await scheduler.start(run)
    return result


async def on_deactivate(
    plugin: Plugin, run: Runner, then: Callable[..., Awaitable[Any]] | None, *args: Any
) -> Any:
    """The ``OnDeactivate`` step: the jobs stop (runs in flight end), then the plugin's own
    handler."""
    scheduler = plugin._job_scheduler
    if scheduler is not None:
        await scheduler.stop()
        plugin._job_scheduler = None
    return None if then is None else await then(*args)
