"""JSON over HTTP with a bearer token, on urllib: the one transport of the SDK."""

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request


class ConveyorError(Exception):
    """The orchestrator answered with an error (``status`` is 0 when it was not reached)."""

    def __init__(self, status, message, body=None):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.body = body


class LeaseLost(ConveyorError):
    """The job's lease is gone (409): another instance has the job, or it was cancelled
    and settled; whatever this instance sends for it is refused."""


def server_and_token(server, token):
    """The server URL and token given, else ``CONVEYOR_SERVER`` and ``CONVEYOR_TOKEN``."""
    server = server or os.environ.get("CONVEYOR_SERVER")
    token = token or os.environ.get("CONVEYOR_TOKEN")
    if not server:
        raise ValueError("no server: pass server= or set CONVEYOR_SERVER (e.g. http://127.0.0.1:8080)")
    if not token:
        raise ValueError("no token: pass token= or set CONVEYOR_TOKEN")
    return server.rstrip("/"), token


def tls_context():
    """The system's roots, plus ``CONVEYOR_CA_CERT`` (a PEM file) when set: a CA, or the
    server's own certificate, trusted as it is (as ``conveyor up --tls-cert`` gives its
    local drivers)."""
    ca = os.environ.get("CONVEYOR_CA_CERT")
    if not ca:
        return None
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=ca)
    ctx.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    return ctx


class Http:
    """Calls one orchestrator with one token."""

    def __init__(self, server, token):
        self.server = server
        self.token = token
        self.tls = tls_context() if server.startswith("https:") else None

    def call(self, method, path, body=None, query=None, timeout=30):
        """The decoded JSON answer (``None`` for an empty one, e.g. 204)."""
        url = self.server + path
        if query:
            pairs = {k: v for k, v in query.items() if v is not None}
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.tls) as res:
                raw = res.read()
        except urllib.error.HTTPError as e:
            raise _error(e) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConveyorError(0, f"cannot reach {self.server}: {reason}") from None
        return json.loads(raw) if raw else None


def _error(e):
    raw = e.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    message = body.get("error") if isinstance(body, dict) else None
    message = message or raw.decode(errors="replace") or e.reason
    kind = LeaseLost if e.code == 409 else ConveyorError
    return kind(e.code, message, body)
