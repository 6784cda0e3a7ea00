"""DriverManager: registers a driver instance, claims its jobs, runs reconcile on each
while heartbeating, and records the result under the job's lease (docs/drivers.md)."""

import os
import signal
import socket
import sys
import threading
import time
import traceback

from ._http import ConveyorError, Http, LeaseLost, server_and_token
from .driver import DriverResult
from .logger import Logger

CLAIM_WAIT_SECS = 20


def _say(message):
    print(f"conveyor_driver: {message}", file=sys.stderr, flush=True)


class DriverManager:
    """Runs ``driver`` against the orchestrator at ``server`` (else ``CONVEYOR_SERVER``),
    registering with ``token`` (else ``CONVEYOR_TOKEN``): the admin token, the runner
    registration token, or a ``--fleet-token driver:NAME=...``."""

    def __init__(self, driver, server=None, token=None, instance=None):
        self.driver = driver
        self.server, self._registration = server_and_token(server, token)
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}".replace("/", "-")
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._http = None

    def stop(self):
        """Stops taking work; a reconcile under way finishes and its result is sent."""
        self._stop.set()

    def run(self):
        """Serves jobs until stopped (SIGTERM or SIGINT when run in the main thread, or
        :meth:`stop`). A second signal while a reconcile runs exits at once."""
        self._watch_parent()
        self._register()
        worker = threading.Thread(target=self._serve, name="conveyor-driver", daemon=True)
        worker.start()
        self._on_signals()
        while worker.is_alive() and not self._stop.is_set():
            worker.join(0.2)
        if self._busy.is_set():
            _say("stopping after the reconcile under way")
        while worker.is_alive() and self._busy.is_set():
            worker.join(0.2)
        _say(f"driver {self.driver.name} ({self.instance}) stopped")

    def _watch_parent(self):
        """A local driver (started by `conveyor run` or `up`, which set
        CONVEYOR_PARENT_PID) exits when its orchestrator's process is gone."""
        try:
            parent = int(os.environ.get("CONVEYOR_PARENT_PID", ""))
        except ValueError:
            return

        def watch():
            while True:
                time.sleep(1)
                try:
                    os.kill(parent, 0)
                except ProcessLookupError:
                    _say(f"the orchestrator (pid {parent}) is gone: exiting")
                    os._exit(0)
                except PermissionError:
                    pass

        threading.Thread(target=watch, name="conveyor-parent", daemon=True).start()

    def _on_signals(self):
        def handler(signum, _frame):
            if self._stop.is_set():
                _say("stopping now")
                os._exit(1)
            self._stop.set()

        try:
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)
        except ValueError:
            pass  # not the main thread: stop() is the way

    def _register(self):
        http = Http(self.server, self._registration)
        body = {
            "driver": self.driver.name,
            "instance": self.instance,
            "resources": list(self.driver.resources),
        }
        while True:
            try:
                reply = http.call("POST", "/api/v1/drivers/register", body)
                break
            except ConveyorError as e:
                if e.status:
                    raise
                _say(f"{e}; trying again")
                if self._stop.wait(2):
                    raise
        self._http = Http(self.server, reply["token"])
        _say(f"driver {self.driver.name} registered as {self.instance} at {self.server}")

    def _serve(self):
        pause = 0.5
        while not self._stop.is_set():
            try:
                work = self._http.call(
                    "POST", "/api/v1/drivers/claim", {"wait_secs": CLAIM_WAIT_SECS},
                    timeout=CLAIM_WAIT_SECS + 15,
                )
                pause = 0.5
            except ConveyorError as e:
                _say(f"claim failed: {e}")
                if e.status == 401:  # the instance's token was replaced: register again
                    self._safe_register()
                self._stop.wait(pause)
                pause = min(pause * 2, 10)
                continue
            if work is None:
                continue
            if self._stop.is_set():
                self._hand_back(work)
                return
            self._busy.set()
            try:
                self.handle(work)
            finally:
                self._busy.clear()

    def _safe_register(self):
        try:
            self._register()
        except ConveyorError as e:
            _say(f"registering again failed: {e}")

    def _hand_back(self, work):
        try:
            self._http.call("POST", "/api/v1/drivers/release", work["lease"])
        except ConveyorError as e:
            _say(f"could not hand back job run {work['lease']['job_run_id']}: {e}")

    def handle(self, work):
        """Runs one work item: reconcile under heartbeats, then the fenced result."""
        lease = work["lease"]
        logger = Logger(self._http, lease, work["run_id"], self.driver.name)
        beating = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(work, logger, beating), daemon=True
        )
        beat.start()
        try:
            result = self._reconcile(work, logger)
        finally:
            beating.set()
            beat.join()
        logger.flush()
        self._complete(work, logger, result)

    def _reconcile(self, work, logger):
        try:
            result = self.driver.reconcile(work["payload"], work["event"], work["run_id"], logger)
        except Exception as e:  # the driver's bug fails the job, not the driver
            for line in traceback.format_exc().rstrip().splitlines():
                logger.log(line, stream="traceback")
            return DriverResult(False, f"reconcile raised {type(e).__name__}: {e}", {})
        if not isinstance(result, DriverResult):
            return DriverResult(False, f"reconcile returned {result!r}, not a DriverResult", {})
        bad = [k for k, v in (result.data or {}).items() if not isinstance(v, str)]
        if bad:
            return DriverResult(False, f"DriverResult.data[{bad[0]!r}] is not a string: outputs are text", {})
        return result

    def _heartbeat(self, work, logger, done):
        every = max(1.0, work.get("lease_secs", 30) / 3)
        last = time.monotonic()
        while not done.wait(1.0):
            logger.flush()
            if logger.lost:
                return self._lost(work)
            if time.monotonic() - last < every:
                continue
            last = time.monotonic()
            try:
                reply = self._http.call("POST", "/api/v1/drivers/heartbeat", work["lease"])
                logger.cancelled = logger.cancelled or bool(reply and reply.get("cancel"))
            except LeaseLost:
                logger.lost = True
                return self._lost(work)
            except ConveyorError as e:
                _say(f"heartbeat failed ({e}); trying again")

    def _lost(self, work):
        lease = work["lease"]
        _say(
            f"lost the lease of job run {lease['job_run_id']} attempt {lease['attempt']}: "
            "it will be given to another instance; this instance's result will be refused"
        )

    def _complete(self, work, logger, result):
        lease = work["lease"]
        body = {
            "lease": lease,
            "success": bool(result.success),
            "message": str(result.message or ""),
            "data": dict(result.data or {}),
        }
        for attempt in range(5):
            try:
                self._http.call("POST", "/api/v1/drivers/complete", body)
                return
            except LeaseLost as e:
                _say(
                    f"result of job run {lease['job_run_id']} attempt {lease['attempt']} "
                    f"refused: {e.message} (the job was re-delivered or settled); moving on"
                )
                return
            except ConveyorError as e:
                if e.status == 422:
                    body = {**body, "success": False, "data": {}, "message": e.message}
                    continue
                _say(f"sending the result failed ({e}); trying again")
                time.sleep(min(2 ** attempt, 10))
        _say(f"gave up sending the result of job run {lease['job_run_id']}: its lease will expire and it will run again")
