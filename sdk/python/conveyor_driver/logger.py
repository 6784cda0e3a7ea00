"""The logger a reconcile writes to: its lines are the job's log, with their labels."""

import sys
import threading
import time


class Logger:
    """``logger.log(message, **labels)``. Lines are sent in batches (every second, and
    before the result); ``cancelled`` turns true when the job was cancelled meanwhile."""

    def __init__(self, http, lease, run_id, driver):
        self.run_id = run_id
        self.driver = driver
        self.cancelled = False
        self._http = http
        self._lease = lease
        self._lines = []
        self._seq = 0
        self._lock = threading.Lock()
        self.lost = False

    def log(self, message, **labels):
        """Adds a line to the job's log; labels are kept with it (values as text)."""
        text = str(message)
        kept = {str(k): str(v) for k, v in labels.items()}
        stamp = time.strftime("%H:%M:%S")
        print(f"[{self.driver} {self.run_id[:8]} {stamp}] {text}", file=sys.stderr, flush=True)
        with self._lock:
            self._lines.append({"message": text, "labels": kept})

    def flush(self):
        """Sends the lines logged so far; marks the lease lost on a 409."""
        from ._http import ConveyorError, LeaseLost

        with self._lock:
            lines, self._lines = self._lines, []
            if not lines or self.lost:
                return
            seq = self._seq
            self._seq += 1
        body = {"lease": self._lease, "seq": seq, "lines": lines}
        for attempt in range(3):
            try:
                self._http.call("POST", "/api/v1/drivers/logs", body)
                return
            except LeaseLost:
                self.lost = True
                return
            except ConveyorError as e:
                if attempt == 2:
                    print(f"conveyor_driver: log lines dropped: {e}", file=sys.stderr)
                time.sleep(0.5)
