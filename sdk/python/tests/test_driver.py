"""The SDK against a real orchestrator: the README's driver as written, results and
failures, exceptions, labels through the log API, and a clean stop on SIGTERM."""

import contextlib
import io
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

from conveyor_driver import Client, Driver, DriverManager, DriverResult

from support import Orchestrator, job, readme_blocks

BROKEN = """product: broken
belts:
  - name: main
    jobs:
      - name: explode
        driver: exploder
"""


class ReadmeDriver(unittest.TestCase):
    """The driver of sdk/python/README.md, copied from it and run as its own process."""

    @classmethod
    def setUpClass(cls):
        cls.o = Orchestrator()
        cls.dir = tempfile.TemporaryDirectory()
        script = Path(cls.dir.name) / "greeter.py"
        script.write_text(readme_blocks("python")[0])
        cls.driver = subprocess.Popen(
            [sys.executable, str(script)], env=cls.o.env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        cls.yaml = readme_blocks("yaml")[0]

    @classmethod
    def tearDownClass(cls):
        if cls.driver.poll() is None:
            cls.driver.kill()
            cls.driver.wait()
        cls.driver.stderr.close()
        cls.o.close()
        cls.dir.cleanup()

    def test_the_readme_driver_runs_its_job_and_hands_the_output_downstream(self):
        build = self.o.finished(self.o.build(self.yaml, "hello", "main"))
        self.assertEqual(build["status"], "succeeded", build)
        greet = job(build, "greet")
        self.assertEqual(greet["driver"], "greeter")
        self.assertEqual(greet["outputs"], {"GREETING": "hello conveyor"})
        self.assertIn("hello conveyor", self.o.log_text(job(build, "show")["id"]))
        self.assertIn("greeted conveyor", self.o.log_text(greet["id"]))

    def test_its_lines_come_back_through_the_log_api_with_their_labels(self):
        build = self.o.finished(self.o.build(self.yaml, "hello", "main"))
        client = Client(self.o.url, self.o.env()["CONVEYOR_TOKEN"])
        lines = client.logs(build["id"], driver="greeter")
        greeting = [l for l in lines if l["message"] == "greeting conveyor"]
        self.assertEqual(len(greeting), 1, lines)
        self.assertEqual(greeting[0]["labels"], {"step": "greet", "event": "create"})
        self.assertEqual(greeting[0]["job"], "greet")
        self.assertEqual(client.logs(build["id"], driver="nobody"), [])

    def test_a_failed_result_fails_the_job_with_its_message(self):
        yaml = self.yaml.replace("product: hello", "product: nobody").replace(
            "WHO: conveyor", "WHO: nobody")
        build = self.o.finished(self.o.build(yaml, "nobody", "main"))
        self.assertEqual(build["status"], "failed", build)
        greet = job(build, "greet")
        self.assertEqual(greet["status"], "failed")
        self.assertEqual(greet["error"], "there is nobody to greet")
        self.assertEqual(job(build, "show")["status"], "skipped")

    def test_sigterm_stops_a_driver_cleanly(self):
        script = Path(self.dir.name) / "greeter.py"
        driver = subprocess.Popen(
            [sys.executable, str(script)], env=self.o.env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.addCleanup(driver.stderr.close)
        self.addCleanup(driver.kill)
        deadline = time.time() + 30
        while time.time() < deadline and not self.connected(2):
            time.sleep(0.2)
        driver.send_signal(signal.SIGTERM)
        self.assertEqual(driver.wait(30), 0)
        self.assertIn("stopped", driver.stderr.read())

    def connected(self, n):
        """Whether `n` instances of the greeter are registered."""
        drivers = self.o.call("GET", "/api/v1/drivers")["drivers"]
        return any(len(d["instances"]) >= n for d in drivers if d["name"] == "greeter")


class InProcess(unittest.TestCase):
    """Drivers run in a thread of the test."""

    @classmethod
    def setUpClass(cls):
        cls.o = Orchestrator()

    @classmethod
    def tearDownClass(cls):
        cls.o.close()

    def serve(self, name, reconcile):
        manager = DriverManager(Driver(name, ["thing"], reconcile), self.o.url,
                                self.o.env()["CONVEYOR_TOKEN"])
        threading.Thread(target=manager.run, daemon=True).start()
        self.addCleanup(manager.stop)
        return manager

    def test_an_exception_in_reconcile_fails_the_job_with_the_traceback_in_its_log(self):
        def reconcile(payload, event, run_id, logger):
            raise ValueError("boom")

        self.serve("exploder", reconcile)
        build = self.o.finished(self.o.build(BROKEN, "broken", "main"))
        explode = job(build, "explode")
        self.assertEqual(explode["status"], "failed", build)
        self.assertEqual(explode["error"], "reconcile raised ValueError: boom")
        log = self.o.log_text(explode["id"])
        self.assertIn("Traceback (most recent call last):", log)
        self.assertIn('raise ValueError("boom")', log)

    def test_the_payload_carries_the_build_the_steps_and_the_event(self):
        seen = {}

        def first(payload, event, run_id, logger):
            return DriverResult(True, "", {"A": "1"})

        def second(payload, event, run_id, logger):
            seen.update(payload=payload, event=event, run_id=run_id)
            return DriverResult(True)

        self.serve("first", first)
        self.serve("second", second)
        yaml = """product: steps
belts:
  - name: main
    jobs:
      - name: one
        driver: first
        outputs: [A]
      - name: two
        driver: second
        needs: [one]
        env: {K: v}
"""
        build_id = self.o.build(yaml, "steps", "main")
        build = self.o.finished(build_id)
        self.assertEqual(build["status"], "succeeded", build)
        self.assertEqual(seen["run_id"], build_id)
        self.assertEqual(seen["event"], "process")
        p = seen["payload"]
        self.assertEqual(p["steps"], {"one": {"A": "1"}})
        self.assertEqual(p["upstream"], {})
        self.assertEqual((p["product"], p["belt"], p["job"], p["attempt"]), ("steps", "main", "two", 1))
        self.assertEqual(p["env"]["K"], "v")
        self.assertEqual(p["build_number"], build["number"])
        self.assertIsNone(p["resource"])

    def test_a_result_refused_after_the_lease_was_lost_is_logged_and_skipped(self):
        token = self.o.env()["CONVEYOR_TOKEN"]
        yaml = "product: lost\nbelts:\n  - name: main\n    jobs:\n      - name: l\n        driver: loser\n        outputs: [WHO]\n"
        stale = DriverManager(Driver("loser", [], lambda *a: DriverResult(True)), self.o.url, token,
                              instance="stale")
        stale._register()
        build_id = self.o.build(yaml, "lost", "main")
        work = stale._http.call("POST", "/api/v1/drivers/claim", {"wait_secs": 10})
        self.assertIsNotNone(work)
        # The stale instance lets go (as if its lease had expired); another takes the job.
        stale._http.call("POST", "/api/v1/drivers/release", work["lease"])
        self.serve("loser", lambda payload, event, run_id, logger: DriverResult(True, "", {"WHO": "fresh"}))
        build = self.o.finished(build_id)
        self.assertEqual(job(build, "l")["outputs"], {"WHO": "fresh"})
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            stale.handle(work)  # reconciles, then its result is refused
        self.assertIn(f"result of job run {work['lease']['job_run_id']} attempt 1 refused", said.getvalue())
        self.assertEqual(job(self.o.finished(build_id), "l")["outputs"], {"WHO": "fresh"})

    def test_a_missing_declared_output_fails_the_job_saying_which(self):
        self.serve("forgetful", lambda payload, event, run_id, logger: DriverResult(True, "done", {}))
        yaml = "product: forgetful\nbelts:\n  - name: main\n    jobs:\n      - name: f\n        driver: forgetful\n        outputs: [URL]\n"
        build = self.o.finished(self.o.build(yaml, "forgetful", "main"))
        self.assertEqual(job(build, "f")["error"],
                         "driver `forgetful` returned no `URL`, which job `f` declares")


if __name__ == "__main__":
    unittest.main()
