"""A local stand-in for the two Google control-plane APIs bootstrap calls that no emulator covers: Cloud KMS
and Service Usage, spoken over their REST surface so the real clients (google-cloud-kms with
`transport="rest"`, and `CloudServiceUsage`) talk to it unchanged.

How the real APIs behave, and what this fake therefore does:
- Errors are JSON `{"error": {"code", "message", "status"}}` with the HTTP status of the code
  (https://cloud.google.com/apis/design/errors); google-api-core maps 403 to PermissionDenied, 404 to
  NotFound, 409 to Conflict/AlreadyExists, 400 to BadRequest/InvalidArgument.
- A call to an API that is not enabled in the project is refused with 403 PERMISSION_DENIED, reason
  SERVICE_DISABLED, "... API has not been used in project N before or it is disabled".
- A principal without the permission gets 403 PERMISSION_DENIED "Permission 'P' denied on resource 'R'";
  tests choose the denied permissions.
- Service Usage v1 (https://cloud.google.com/service-usage/docs/reference/rest/v1/services):
  `GET projects/P/services/S` -> `{name, state: ENABLED|DISABLED}`; `POST projects/P/services:batchEnable`
  with `serviceIds` (at most 20) -> a long-running Operation, not yet done; `GET operations/O` -> the
  operation, done (the services enabled) from the first poll on. Enabling an enabled service is a no-op.
- Cloud KMS v1 (https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings and
  .cryptoKeys): `create` with `keyRingId` / `cryptoKeyId` in the query; a name that exists -> 409
  ALREADY_EXISTS; a crypto key under a missing ring -> 404. A CryptoKey's `rotationPeriod` must be at least
  24 hours and at most 876,000 hours, and "If rotation_period is set, next_rotation_time must also be set"
  (google/cloud/kms_v1/types/resources.py): otherwise 400 INVALID_ARGUMENT. Only ENCRYPT_DECRYPT keys rotate
  automatically. Key rings and keys cannot be deleted.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROJECT_NUMBERS = {"acme-ml": "123456789012"}
DEFAULT_ENABLED = frozenset({"serviceusage.googleapis.com", "storage.googleapis.com"})
_RING = re.compile(r"^/v1/(projects/([^/]+)/locations/[^/]+/keyRings)(?:/([^/:]+))?$")
_KEY = re.compile(r"^/v1/(projects/([^/]+)/locations/[^/]+/keyRings/[^/]+)/cryptoKeys(?:/([^/:]+))?$")
_SERVICE = re.compile(r"^/v1/projects/([^/]+)/services/([^/:]+)$")
_BATCH = re.compile(r"^/v1/projects/([^/]+)/services:batchEnable$")
_OPERATION = re.compile(r"^/v1/(operations/[^/]+)$")
_DURATION = re.compile(r"^(\d+)(?:\.\d+)?s$")


class ApiError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


@dataclass
class GoogleState:
    enabled: dict[str, set[str]] = field(default_factory=dict)
    denied: set[str] = field(
        default_factory=set
    )  # permissions the caller lacks, e.g. cloudkms.keyRings.create
    key_rings: set[str] = field(default_factory=set)
    crypto_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def services(self, project: str) -> set[str]:
        return self.enabled.setdefault(project, set(DEFAULT_ENABLED))

    def check(self, permission: str, resource: str) -> None:
        if permission in self.denied:
            raise ApiError(
                403, "PERMISSION_DENIED", f"Permission '{permission}' denied on resource '{resource}'"
            )

    def require_api(self, project: str, api: str, title: str) -> None:
        if api not in self.services(project):
            number = PROJECT_NUMBERS.get(project, project)
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"{title} has not been used in project {number} before or it is disabled. Enable it by "
                f"visiting https://console.developers.google.com/apis/api/{api}/overview?project={number} "
                "then retry. [reason: SERVICE_DISABLED]",
            )

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((method, path))
        if match := _SERVICE.match(path):
            project, service = match.groups()
            self.check("serviceusage.services.get", f"projects/{project}")
            state = "ENABLED" if service in self.services(project) else "DISABLED"
            return {
                "name": f"projects/{PROJECT_NUMBERS.get(project, project)}/services/{service}",
                "state": state,
            }
        if (match := _BATCH.match(path)) and method == "POST":
            project = match.group(1)
            self.check("serviceusage.services.enable", f"projects/{project}")
            ids = body.get("serviceIds", [])
            if not ids or len(ids) > 20:
                raise ApiError(400, "INVALID_ARGUMENT", "serviceIds must hold 1 to 20 services")
            name = f"operations/acf.p2-{len(self.operations) + 1}"
            self.operations[name] = {"name": name, "project": project, "ids": list(ids), "polled": False}
            return {"name": name}
        if match := _OPERATION.match(path):
            operation = self.operations[match.group(1)]
            self.services(operation["project"]).update(operation["ids"])
            return {
                "name": operation["name"],
                "done": True,
                "response": {"@type": "BatchEnableServicesResponse"},
            }
        if match := _KEY.match(path):
            return self._crypto_key(method, match.group(1), match.group(2), match.group(3), query, body)
        if match := _RING.match(path):
            return self._key_ring(method, match.group(1), match.group(2), match.group(3), query)
        raise ApiError(404, "NOT_FOUND", f"no route for {method} {path}")

    def _key_ring(
        self, method: str, parent: str, project: str, ring: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        self.require_api(project, "cloudkms.googleapis.com", "Cloud Key Management Service (KMS) API")
        if method == "GET" and ring is not None:
            name = f"{parent}/{ring}"
            self.check("cloudkms.keyRings.get", name)
            if name not in self.key_rings:
                raise ApiError(404, "NOT_FOUND", f"KeyRing {name} not found.")
            return {"name": name}
        name = f"{parent}/{query.get('keyRingId', '')}"
        self.check("cloudkms.keyRings.create", parent)
        if name in self.key_rings:
            raise ApiError(409, "ALREADY_EXISTS", f"KeyRing {name} already exists.")
        self.key_rings.add(name)
        return {"name": name}

    def _crypto_key(
        self,
        method: str,
        ring: str,
        project: str,
        key: str | None,
        query: dict[str, str],
        body: dict[str, Any],
    ) -> dict[str, Any]:
        self.require_api(project, "cloudkms.googleapis.com", "Cloud Key Management Service (KMS) API")
        if method == "GET" and key is not None:
            name = f"{ring}/cryptoKeys/{key}"
            self.check("cloudkms.cryptoKeys.get", name)
            if name not in self.crypto_keys:
                raise ApiError(404, "NOT_FOUND", f"CryptoKey {name} not found.")
            return self.crypto_keys[name]
        self.check("cloudkms.cryptoKeys.create", ring)
        if ring not in self.key_rings:
            raise ApiError(404, "NOT_FOUND", f"KeyRing {ring} not found.")
        name = f"{ring}/cryptoKeys/{query.get('cryptoKeyId', '')}"
        if name in self.crypto_keys:
            raise ApiError(409, "ALREADY_EXISTS", f"CryptoKey {name} already exists.")
        # The REST client sends enums as numbers ($alt=json;enum-encoding=int): ENCRYPT_DECRYPT is 1.
        if body.get("purpose") not in ("ENCRYPT_DECRYPT", 1):
            raise ApiError(400, "INVALID_ARGUMENT", "Only ENCRYPT_DECRYPT keys are made here")
        if "rotationPeriod" in body:
            seconds = _DURATION.match(str(body["rotationPeriod"]))
            if seconds is None or not 24 * 3600 <= int(seconds.group(1)) <= 876_000 * 3600:
                raise ApiError(400, "INVALID_ARGUMENT", "rotation_period must be between 24 and 876000 hours")
            if "nextRotationTime" not in body:
                raise ApiError(
                    400,
                    "INVALID_ARGUMENT",
                    "next_rotation_time must be set if rotation_period is set",
                )
            datetime.fromisoformat(str(body["nextRotationTime"]).replace("Z", "+00:00"))
        self.crypto_keys[name] = {**body, "name": name}
        return self.crypto_keys[name]


class FakeGoogleApis:
    """Serves `GoogleState` on 127.0.0.1; `endpoint` is what the clients take as their API endpoint."""

    def __init__(self) -> None:
        self.state = GoogleState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                try:
                    status, payload = 200, state.handle(method, url.path, query, body)
                except ApiError as error:
                    status = error.code
                    payload = {
                        "error": {"code": error.code, "message": error.message, "status": error.status}
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGoogleApis:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
