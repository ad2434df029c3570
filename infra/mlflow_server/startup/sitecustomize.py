"""Run by Python at the start of every process of the tracking server whose PYTHONPATH holds this folder.

`mlflow server` starts uvicorn, and uvicorn its workers, as new interpreters: MLflow offers no hook that
runs in them, and this is the one Python always does (https://docs.python.org/3/library/site.html). The
entrypoint puts this folder on PYTHONPATH and names the hooks to install in `MLOPS_STACK_SERVER_HOOKS`
(`command.build_launch`): `strict-cors` always (`infra/mlflow_server/strict_cors.py`), `gcs-signing` when
artifacts go to GCS (`infra/mlflow_server/gcs_signing.py`).
"""

import os

from infra.mlflow_server.command import HOOKS_VARIABLE, install_hooks

install_hooks(os.environ.get(HOOKS_VARIABLE, ""))
