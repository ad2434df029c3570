"""Cross-origin requests with credentials only from the service's own origins, localhost included.

MLflow 3.17.2 always trusts `http://localhost:*`, `http://127.0.0.1:*` and `http://[::1]:*` as CORS origins,
next to `--cors-allowed-origins` (mlflow/server/security_utils.py: `LOCALHOST_ORIGIN_PATTERNS` feed the
allow-lists of both the Flask and the FastAPI security middleware, and `is_localhost_origin` exempts those
origins from `should_block_cors_request`). That suits `mlflow server` on a laptop. In the cloud it means
any page served from a user's own machine (a dev server, a tool's local UI) may send authenticated writes to
the team's tracking server from that user's browser: a POST with `Origin: http://127.0.0.1:9999` created an
experiment. Here the only allowed origins are `https://<host>` for the hosts infra names.

`install()` arranges for `security_utils`, when a process imports it, to have its pattern list emptied in
place (the security modules import the list object itself and read it when they build their middleware)
and `is_localhost_origin` answer no. It patches on import rather than importing MLflow's server package
itself: uvicorn's supervisor process never imports the app, and importing it there would cost ~200 MiB.
`startup/sitecustomize.py` runs `install()` first thing in every server process.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

TARGET = "mlflow.server.security_utils"


def _no_origin_is_trusted_for_being_local(origin: str) -> bool:
    return False


def restrict(security_utils: ModuleType) -> None:
    """Take the localhost origins out of MLflow's CORS allow-list and its cross-origin write check."""
    security_utils.LOCALHOST_ORIGIN_PATTERNS.clear()
    setattr(security_utils, "is_localhost_origin", _no_origin_is_trusted_for_being_local)  # noqa: B010


class _RestrictOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds TARGET through the other finders, and restricts the module right after it runs."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                self._loader = spec.loader
                spec.loader = self
                return spec
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        restrict(module)


def install() -> None:
    """Restrict MLflow's CORS trust in this process: at once if already imported, else on import."""
    if TARGET in sys.modules:
        restrict(sys.modules[TARGET])
    elif not any(isinstance(finder, _RestrictOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RestrictOnImport())
