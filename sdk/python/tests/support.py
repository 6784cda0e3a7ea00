"""A real orchestrator for the SDK's tests: `conveyor up` on SQLite in a temporary
directory (CONVEYOR_BIN names the binary; default: the workspace's target/debug/conveyor)."""

import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ADMIN = "sdk-tests-admin-token-0123456789"


def conveyor_bin():
    return os.environ.get("CONVEYOR_BIN") or str(REPO / "target" / "debug" / "conveyor")


class Orchestrator:
    """`conveyor up` with no examples, on a random port."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="conveyor-sdk-")
        examples = Path(self.dir.name) / "examples"
        examples.mkdir()
        env = {**os.environ, "CONVEYOR_ADMIN_TOKEN": ADMIN}
        self.proc = subprocess.Popen(
            [conveyor_bin(), "up", "--listen", "127.0.0.1:0",
             "--data-dir", str(Path(self.dir.name) / "data"), "--examples", str(examples)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        )
        self.url = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            found = re.search(r"conveyor is up at (\S+)", line)
            if found:
                self.url = found.group(1)
                break
        if not self.url:
            self.close()
            raise RuntimeError("conveyor up did not start")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.dir.cleanup()

    def env(self):
        """What a driver process needs to reach this orchestrator."""
        return {**os.environ, "CONVEYOR_SERVER": self.url, "CONVEYOR_TOKEN": ADMIN}

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {ADMIN}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as res:
            raw = res.read()
        return json.loads(raw) if raw else None

    def build(self, yaml, product, belt):
        """Registers `yaml` and starts a build of `product`/`belt`; its id."""
        self.call("POST", "/api/v1/products", {"yaml": yaml})
        return self.call("POST", f"/api/v1/products/{product}/belts/{belt}/builds", {})["id"]

    def finished(self, build_id, within=60):
        """The build once it has finished (fails the test after `within` seconds)."""
        deadline = time.time() + within
        while time.time() < deadline:
            b = self.call("GET", f"/api/v1/builds/{build_id}")
            if b.get("finished_at"):
                return b
            time.sleep(0.2)
        raise AssertionError(f"build {build_id} did not finish: {b}")

    def log_text(self, job_run_id):
        lines = self.call("GET", f"/api/v1/job-runs/{job_run_id}/logs")["lines"]
        return "\n".join(l["text"] for l in lines)


def job(build, name):
    return next(j for j in build["jobs"] if j["name"] == name)


def readme_blocks(language):
    """The README's fenced code blocks in `language`, in order."""
    text = (REPO / "sdk" / "python" / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)
