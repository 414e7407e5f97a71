"""The scale-out tier: jobs on a durable queue in Redis, run by `vectorfair worker`.

Used when `[queue] redis_url` is set (the server profile); the embedded
default keeps `jobs.JobRunner` (SQLite, in the web process). Here:

- job records and their progress live in Redis (`RedisJobStore`), so every
  web process answers GET /api/jobs/{id}, its event stream and cancel;
- a job is a Dramatiq message on a Redis queue (`QueuedJobs.submit`). A
  worker acknowledges it only after the job ended; a worker that dies stops
  sending heartbeats, and another worker puts its unacknowledged messages back
  on the queue after `heartbeat_timeout_s`. Items stored before are skipped by
  their content hash, so a job taken over never stores an item twice;
- while a worker runs a job it holds the job's lease (a key with a time to
  live it keeps renewing), so a message delivered twice never runs twice at
  once: the second worker waits until the job ends or the lease runs out;
- only the lease holder writes a job's progress: a worker that lost its lease
  (Redis was away longer than the lease, and another worker took the job over)
  stops without writing, and leaves the job to the other;
- cancelling sets a flag the running worker reads between items; a job no
  worker holds (queued, or its worker is gone) is marked cancelled at once and
  skipped when its message comes. The worker that gets the message removes
  the job's kept upload.

Dramatiq does the queueing, acknowledgement, redelivery and retries (with
back-off); the job record, its lease and the cancel flag are ours because they
are what the API shows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .jobs import (
    TERMINAL,
    WAITING,
    Job,
    JobFailed,
    JobSource,
    ingest_job,
    job_from_json,
    job_to_json,
    succeeded_message,
)
from .store import StoreUnavailable
from .tenancy import PUBLIC_TENANT

if TYPE_CHECKING:
    from .runtime import Platform
    from .settings import QueueSettings

log = logging.getLogger("vectorfair.queue")
QUEUE_NAME = "vectorfair-jobs"
ACTOR_NAME = "vectorfair_run_job"
# How much of Dramatiq's Redis commands also look for dead workers (out of a
# million): often enough that a dead worker's job is taken over within seconds
# of its heartbeat timing out; each look is one small Lua script.
MAINTENANCE_CHANCE = 200_000


class QueueUnavailable(Exception):
    """Redis (the job queue and shared limits) cannot be reached; answered as
    503 with Retry-After."""


def redis_client(url: str):
    import redis

    # Short timeouts: a Redis that is away gives a 503 at once, never a hung request.
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)


def unavailable(exc: Exception) -> QueueUnavailable:
    return QueueUnavailable(f"the job queue (Redis) is unreachable ({type(exc).__name__}); retry in a few seconds")


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    # Every error of the client, refused commands (ResponseError: a Redis out of
    # memory, a script it lost) as well as connections: each is a 503, never a 500.
    return (redis.RedisError,)


# What RedisJobStore.save answers.
SAVED, ENDED, LEASED = 1, 0, -1
# The holder of a save that must not happen while any worker holds the lease.
NOBODY = "-"

_SAVE = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, old = pcall(cjson.decode, current)
  if ok and (old.state == 'succeeded' or old.state == 'failed' or old.state == 'cancelled') then
    return 0
  end
end
if ARGV[5] ~= '' then
  local holder = redis.call('GET', KEYS[4])
  if holder and holder ~= ARGV[5] then return -1 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
if ARGV[3] == '1' then redis.call('SREM', KEYS[3], ARGV[4]) else redis.call('SADD', KEYS[3], ARGV[4]) end
return 1
"""

_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
return 0
"""

_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisJobStore:
    """Job records in Redis: `<ns>:job:<id>` holds the JSON record,
    `<ns>:jobs` orders them by creation, `<ns>:jobs:active` names the ones not
    ended. A record that ended is never written again (a late progress write
    or end of a worker loses against a cancel, and the reverse)."""

    def __init__(self, client, namespace: str):
        self.client = client
        self.ns = namespace
        self._save = client.register_script(_SAVE)
        self._renew = client.register_script(_RENEW)
        self._drop = client.register_script(_DROP)

    def key(self, job_id: str, suffix: str = "") -> str:
        return f"{self.ns}:job:{job_id}{suffix}"

    def save(self, job: Job, holder: str = "") -> int:
        """Store the record: SAVED; ENDED (not stored) when it had ended already:
        an end is never replaced, not even by another end. A worker names itself as `holder`: LEASED (not
        stored) while another holds the job's lease; NOBODY: while anyone does."""
        args = [job_to_json(job), job.created, "1" if job.state in TERMINAL else "0", job.id, holder]
        keys = [self.key(job.id), f"{self.ns}:jobs", f"{self.ns}:jobs:active", self.key(job.id, ":lease")]
        return int(self._save(keys=keys, args=args))

    def get(self, job_id: str) -> Job | None:
        if not job_id.isalnum() or len(job_id) > 64:
            return None
        body = self.client.get(self.key(job_id))
        return job_from_json(body) if body else None

    def _many(self, ids: list[bytes]) -> list[Job]:
        if not ids:
            return []
        bodies = self.client.mget([self.key(i.decode()) for i in ids])
        return [job_from_json(b) for b in bodies if b]

    def newest_first(self) -> list[Job]:
        return self._many(self.client.zrevrange(f"{self.ns}:jobs", 0, -1))

    def active(self) -> list[Job]:
        jobs = self._many(list(self.client.smembers(f"{self.ns}:jobs:active")))
        return sorted((j for j in jobs if j.state not in TERMINAL), key=lambda j: j.created)

    def delete(self, job_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(self.key(job_id), self.key(job_id, ":cancel"))
        pipe.zrem(f"{self.ns}:jobs", job_id)
        pipe.srem(f"{self.ns}:jobs:active", job_id)
        pipe.execute()

    # -- cancel flag and lease -------------------------------------------------------
    def request_cancel(self, job_id: str) -> None:
        self.client.set(self.key(job_id, ":cancel"), b"1", ex=7 * 86400)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.client.exists(self.key(job_id, ":cancel")))

    def take_lease(self, job_id: str, holder: str, ttl_ms: int) -> bool:
        """Hold (or keep holding) the job's lease; False while another worker holds it."""
        return bool(self._renew(keys=[self.key(job_id, ":lease")], args=[holder, ttl_ms]))

    def lease_holder(self, job_id: str) -> str | None:
        holder = self.client.get(self.key(job_id, ":lease"))
        return holder.decode() if holder else None

    def drop_lease(self, job_id: str, holder: str) -> None:
        self._drop(keys=[self.key(job_id, ":lease")], args=[holder])


def make_broker(settings: QueueSettings):
    """The Dramatiq broker on the queue's Redis, with the one actor that runs a job.
    Dramatiq's TimeLimit middleware is left out: a job takes as long as its data."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications

    class JobRetries(Retries):
        def after_process_message(self, broker, message, *, result=None, exception=None):
            try:
                super().after_process_message(broker, message, result=result, exception=exception)
            except _redis_errors() as exc:
                # The job's record says queued, yet no message will run it again.
                log.error(
                    "job %s stays queued with nothing to run it: its retry could not be queued (Redis: %s); "
                    "cancel it and submit it again",
                    message.args[0] if message.args else "?",
                    exc,
                )
                raise

    broker = RedisBroker(
        url=settings.redis_url,
        namespace=f"{settings.namespace}:dramatiq",
        heartbeat_timeout=int(settings.heartbeat_timeout_s * 1000),
        maintenance_chance=MAINTENANCE_CHANCE,
        middleware=[
            JobRetries(
                max_retries=settings.max_retries,
                min_backoff=int(settings.retry_backoff_s * 1000),
                max_backoff=int(settings.retry_backoff_s * 1000 * 16),
                retry_when=lambda retries, exc: not isinstance(exc, JobFailed) and retries < settings.max_retries,
            ),
            CurrentMessage(),
            ShutdownNotifications(),
        ],
    )
    # The web processes only send: the actor's body is bound by `JobWorker`.
    dramatiq.Actor(_unbound, broker=broker, actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, priority=0, options={})
    return broker


def _unbound(job_id: str) -> None:
    raise RuntimeError("this process only enqueues jobs; `vectorfair worker` runs them")


class QueuedJobs:
    """The web processes' side: the public surface of `jobs.JobRunner`
    (submit, get, list, active, cancel, prune), on Redis and the queue."""

    def __init__(self, settings: QueueSettings, kept_uploads):
        self.settings = settings
        self.client = redis_client(settings.redis_url)
        self.store = RedisJobStore(self.client, settings.namespace)
        self.broker = make_broker(settings)
        self.kept_uploads = kept_uploads
        self.errors = _redis_errors()

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self.errors as exc:
            raise unavailable(exc) from None

    # -- lifecycle: nothing runs here ---------------------------------------------
    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def close(self) -> None:
        self.broker.close()
        self.client.close()

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except self.errors:
            return False

    # -- API ---------------------------------------------------------------------
    def submit(self, demo: str, source: JobSource, label: str = "", tenant: str = PUBLIC_TENANT) -> Job:
        job = Job(id=uuid.uuid4().hex, demo=demo, source=source, label=label, tenant=tenant)
        job.version = 1
        import dramatiq

        def send():
            self.store.save(job)
            try:
                self.broker.enqueue(
                    dramatiq.Message(
                        queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(job.id,), kwargs={}, options={}
                    )
                )
            except BaseException:
                # A record without its message would stay queued for ever.
                try:
                    self.store.delete(job.id)
                except self.errors:
                    log.warning("job %s: not queued, and its record could not be removed", job.id)
                raise

        self._guard(send)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._guard(lambda: self.store.get(job_id))

    def list(self, demo: str | None = None, tenant: str | None = None, limit: int | None = None) -> list[Job]:
        jobs = self._guard(self.store.newest_first)
        return [j for j in jobs if (demo is None or j.demo == demo) and (tenant is None or j.tenant == tenant)][:limit]

    def active(self, demo: str | None = None, tenant: str | None = None) -> list[Job]:
        jobs = self._guard(self.store.active)
        return [j for j in jobs if (demo is None or j.demo == demo) and (tenant is None or j.tenant == tenant)]

    def cancel(self, job_id: str) -> Job | None:
        def cancel() -> Job | None:
            job = self.store.get(job_id)
            if job is None or job.state in TERMINAL:
                return job
            self.store.request_cancel(job_id)
            # No worker holds it (queued, or its worker is gone): it ends now.
            # A worker that takes it meanwhile reads the flag and stops; the
            # one that gets its message removes its kept upload.
            before = job.state
            job.state, job.updated, job.version = "cancelled", time.time(), job.version + 1
            if before == "queued":
                job.message = "cancelled before it started"
            else:
                job.message = "cancelled while no worker ran it; items stored before are kept"
            if self.store.save(job, holder=NOBODY) != SAVED:
                return self.store.get(job_id)  # a worker holds it: it stops at its next item
            return job

        return self._guard(cancel)

    def prune(self, before: float) -> int:
        """Forget visitors' jobs that ended before `before` (their uploads went when they ended)."""
        pruned = 0
        for job in self._guard(self.store.newest_first):
            if job.state in TERMINAL and job.updated < before and job.tenant != PUBLIC_TENANT:
                self._guard(lambda job=job: self.store.delete(job.id))
                pruned += 1
        return pruned


class _Lease:
    """One run's hold on a job: its holder name, and whether it was lost
    (another worker took the job over, or the job ended meanwhile)."""

    def __init__(self, holder: str):
        self.holder = holder
        self.lost = threading.Event()


class JobWorker:
    """The worker's side: runs the jobs Dramatiq hands it, with the plugins,
    encoders and store of its own `Platform`."""

    def __init__(self, platform: Platform):
        self.platform = platform
        self.settings = platform.settings.queue
        self.client = redis_client(self.settings.redis_url)
        self.store = RedisJobStore(self.client, self.settings.namespace)
        self.broker = make_broker(self.settings)
        self.broker.get_actor(ACTOR_NAME).fn = self.run
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.errors = _redis_errors()
        self.lease_ms = int(self.settings.heartbeat_timeout_s * 1000)
        self.worker = None
        # The jobs running in this process (calls of `run` not returned yet).
        self._running = 0
        self._running_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        from dramatiq import Worker

        self.worker = Worker(self.broker, worker_threads=self.settings.worker_threads)
        # Fetch no job ahead of a free thread: a job waiting here is one
        # another worker could be running.
        self.worker.queue_prefetch = self.settings.worker_threads
        self.worker.start()
        log.info("worker %s consuming %s (%d thread(s))", self.name, QUEUE_NAME, self.settings.worker_threads)

    def stop(self) -> bool:
        """Stop taking jobs and wait for the running ones to end (up to
        `stop_timeout_s`); False when one is still running. The process should
        then exit without closing its platform: the job, its lease run out,
        resumes on another worker, where closing Milvus under it would end it
        as failed."""
        ended = True
        if self.worker is not None:
            self.worker.stop(timeout=int(self.settings.stop_timeout_s * 1000))
            # Counted, not read from Dramatiq's threads: an idle one takes about
            # a second to see it should stop, and runs no job meanwhile.
            with self._running_lock:
                ended = self._running == 0
        self.broker.close()
        return ended

    # -- one job -----------------------------------------------------------------
    def run(self, job_id: str) -> None:
        with self._running_lock:
            self._running += 1
        try:
            self._run_held(job_id)
        finally:
            with self._running_lock:
                self._running -= 1

    def _run_held(self, job_id: str) -> None:
        lease = _Lease(f"{self.name}:{uuid.uuid4().hex[:8]}")
        renewing = threading.Event()
        renewer = None
        try:
            job = self._hold_lease(job_id, lease)
            if job is None:
                return
            renewer = threading.Thread(target=self._renew_lease, args=(job.id, lease, renewing), daemon=True)
            renewer.start()
            self._run(job, lease)
        finally:
            renewing.set()
            if renewer is not None:
                renewer.join()
            try:
                self.store.drop_lease(job_id, lease.holder)
            except self.errors:
                pass

    def _hold_lease(self, job_id: str, lease: _Lease) -> Job | None:
        """Take the job's lease, waiting while another worker holds it (a
        message delivered twice) and while Redis is away; the job's record as
        it is once held, or None when it has none or it ended (its kept upload
        is removed then)."""
        away = False
        while True:
            try:
                held = self.store.take_lease(job_id, lease.holder, self.lease_ms)
                # Read once the lease is held: no other worker writes it now.
                job = self.store.get(job_id)
                if job is None or job.state in TERMINAL:
                    if held:
                        self.store.drop_lease(job_id, lease.holder)
                    if job is None:
                        log.warning("job %s has no record (Redis lost it?); dropped", job_id)
                    else:
                        self._remove_upload(job)
                    return None
                if held:
                    return job
            except self.errors as exc:
                if not away:
                    log.warning("job %s waits: Redis is unreachable (%s)", job_id, exc)
                away = True
            time.sleep(1.0)

    def _renew_lease(self, job_id: str, lease: _Lease, stop: threading.Event) -> None:
        while not stop.wait(self.lease_ms / 4000):
            try:
                renewed = self.store.take_lease(job_id, lease.holder, self.lease_ms)
            except self.errors:
                continue  # Redis is away; the lease is taken again when it is back, if no one else took it
            if not renewed:
                self._lost(job_id, lease)
                return

    def _lost(self, job_id: str, lease: _Lease) -> None:
        if not lease.lost.is_set():
            log.warning("job %s: another worker took it over (this one's lease ran out); this one stops", job_id)
            lease.lost.set()

    def _ended(self, job: Job, lease: _Lease) -> None:
        """The job ended meanwhile (cancelled while Redis was away, or ended by
        a worker that took it over): this run stops and writes nothing more.
        Its kept upload goes (removing it twice is harmless)."""
        if not lease.lost.is_set():
            log.warning("job %s: it ended meanwhile (not by this worker); this one stops", job.id)
            lease.lost.set()
            self._remove_upload(job)

    def _save(self, job: Job, lease: _Lease, final: bool = False) -> None:
        if lease.lost.is_set():
            return
        job.updated = time.time()
        job.version += 1
        deadline = time.monotonic() + self.settings.final_save_timeout_s
        while True:
            try:
                answer = self.store.save(job, holder=lease.holder)
                if answer == LEASED:
                    self._lost(job.id, lease)
                elif answer == ENDED:
                    self._ended(job, lease)
                return
            except self.errors as exc:
                if not final or time.monotonic() > deadline:
                    log.warning("job %s: progress not saved, Redis is unreachable (%s)", job.id, exc)
                    return
            time.sleep(1.0)

    def _cancel_check(self, job: Job, lease: _Lease) -> Callable[[], bool]:
        state = {"at": 0.0, "cancelled": False}

        def should_stop() -> bool:
            if lease.lost.is_set():
                return True
            now = time.monotonic()
            if not state["cancelled"] and now - state["at"] > 0.3:
                state["at"] = now
                try:
                    state["cancelled"] = self.store.cancel_requested(job.id)
                except self.errors:
                    pass
            return state["cancelled"]

        return should_stop

    def _run(self, job: Job, lease: _Lease) -> None:
        should_stop = self._cancel_check(job, lease)
        retries = self._retries()
        if job.state == "running" or retries:
            job.resumed += 1
            job.message = "taken over by another worker; items stored before are skipped"
        if not self._wait_for_demo(job, lease, should_stop):
            return
        job.state, job.done, job.failed, job.duplicates, job.errors, job.step = "running", 0, 0, 0, [], None
        job.worker = self.name

        def save(job: Job) -> None:
            self._save(job, lease)

        save(job)
        try:
            ingest_job(job, self.platform.ingestor, self.platform.open_job_source, save, should_stop, 0.3)
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
        if lease.lost.is_set():
            return  # the worker that took it over ends it and removes its upload
        if isinstance(error, JobFailed):
            job.state, job.message = "failed", str(error)
        elif error is not None:
            reason = f"{type(error).__name__}: {error}"
            if retries < self.settings.max_retries:
                job.state = "queued"
                job.message = f"attempt {retries + 1} failed ({reason}); it is tried again"
                self._save(job, lease, final=True)
                raise error  # Dramatiq's Retries puts it back on the queue after a back-off
            if isinstance(error, StoreUnavailable):
                job.state, job.message = "failed", f"{error}; submit the job again, stored items are skipped"
            else:
                log.error("job %s failed", job.id, exc_info=error)
                job.state, job.message = "failed", reason
        elif should_stop():
            job.state, job.message = "cancelled", "cancelled; items stored before that are kept"
        else:
            job.state, job.message = "succeeded", succeeded_message(job)
        self._end(job, lease)

    def _end(self, job: Job, lease: _Lease) -> None:
        """Save the job's end and remove its kept upload, unless another worker took it over."""
        self._save(job, lease, final=True)
        if not lease.lost.is_set():
            self._remove_upload(job)

    def _wait_for_demo(self, job: Job, lease: _Lease, should_stop: Callable[[], bool]) -> bool:
        if job.demo not in self.platform.demos:
            job.state, job.message = "failed", f"the workers have no demo {job.demo!r} enabled; check their config"
            self._end(job, lease)
            return False
        while not should_stop():
            try:
                self.platform.require(job.demo)
                return True
            except StoreUnavailable:
                if job.message != WAITING:
                    job.message = WAITING
                    self._save(job, lease)
                time.sleep(1.0)
            except Exception as exc:  # the demo's collection does not fit it, or no such demo here
                job.state, job.message = "failed", str(exc) or type(exc).__name__
                self._end(job, lease)
                return False
        if lease.lost.is_set():
            return False
        job.state, job.message = "cancelled", "cancelled before it started"
        self._end(job, lease)
        return False

    def _remove_upload(self, job: Job) -> None:
        """A job's kept upload goes when the job ends, however it ends."""
        if job.upload_file:
            try:
                self.platform.kept_uploads.delete(job.upload_file)
            except Exception:
                log.warning("job %s: its kept upload %s could not be removed", job.id, job.upload_file, exc_info=True)

    @staticmethod
    def _retries() -> int:
        from dramatiq.middleware import CurrentMessage

        message = CurrentMessage.get_current_message()
        return int(message.options.get("retries", 0)) if message is not None else 0


_TAKE = """
local items, bytes = tonumber(ARGV[2]), tonumber(ARGV[3])
for _, run in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local claim = redis.call('HMGET', ARGV[8] .. run, 'items', 'bytes')
  if claim[1] then
    items = items + tonumber(claim[1])
    bytes = bytes + tonumber(claim[2] or '0')
  else
    redis.call('SREM', KEYS[1], run)
  end
end
local size, max_items, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if (max_items > 0 and items >= max_items) or (max_bytes > 0 and bytes + size > max_bytes) then
  return {0, items, bytes}
end
local claim = ARGV[8] .. ARGV[1]
redis.call('HINCRBY', claim, 'items', 1)
redis.call('HINCRBY', claim, 'bytes', size)
redis.call('EXPIRE', claim, ARGV[7])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[7])
return {1, items, bytes}
"""


class RedisClaims:
    """The items and bytes that open ingest runs of a visitor have taken but
    not stored yet, for every process at once: one hash per run (expiring, so
    a process that died frees its claims) and a set of a visitor's runs. The
    check and the claim are one Lua script, so two uploads through two
    processes cannot both take the last free item."""

    # A run renews its claim at every item; one silent this long is gone.
    CLAIM_TTL_S = 3600

    def __init__(self, client, namespace: str):
        self.client = client
        self.ns = namespace
        self._take = client.register_script(_TAKE)
        self.errors = _redis_errors()
        # The runs of this process holding claims (run -> tenant), for `release_open`.
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self.errors as exc:
            raise unavailable(exc) from None

    def generation(self, tenant: str) -> int:
        """Bumped whenever a run of `tenant` ends (its items are in Milvus then)."""
        return int(self._guard(lambda: self.client.get(f"{self.ns}:claims:{tenant}:ended")) or 0)

    def take(self, tenant: str, run: str, stored, size: int, max_items: int, max_bytes: int) -> tuple[bool, int, int]:
        keys = [f"{self.ns}:claims:{tenant}"]
        args = [run, stored.items, stored.bytes, size, max_items, max_bytes, self.CLAIM_TTL_S, f"{self.ns}:claim:"]
        with self._lock:
            if not self._closed:
                taken, items, bytes_used = self._guard(lambda: self._take(keys=keys, args=args))
                if taken:
                    self._open[run] = tenant
                return bool(taken), int(items), int(bytes_used)
        # The process is exiting with this run cut off (`release_open`): it
        # takes nothing more, and waits here for the exit.
        threading.Event().wait()
        raise AssertionError("unreachable")

    def release_open(self) -> None:
        """Release the claims of every run of this process still open, and
        take no more: called by a worker exiting with a job cut off, whose
        claims would otherwise be counted besides the worker taking it over
        until they expire (CLAIM_TTL_S)."""
        with self._lock:
            self._closed = True
            open_runs, self._open = dict(self._open), {}
        for run, tenant in open_runs.items():
            self.release(tenant, run)

    def release(self, tenant: str, run: str) -> None:
        with self._lock:
            self._open.pop(run, None)
        pipe = self.client.pipeline()
        pipe.delete(f"{self.ns}:claim:{run}")
        pipe.srem(f"{self.ns}:claims:{tenant}", run)
        pipe.incr(f"{self.ns}:claims:{tenant}:ended")
        pipe.expire(f"{self.ns}:claims:{tenant}:ended", self.CLAIM_TTL_S)
        try:
            pipe.execute()
        except self.errors:
            log.warning("the quota claims of run %s were not released (Redis unreachable); they expire", run)
