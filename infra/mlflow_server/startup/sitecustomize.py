"""Run by Python at the start of every process of the tracking server whose PYTHONPATH holds this folder.

`mlflow server` starts uvicorn, and uvicorn its workers, as new interpreters: MLflow offers no hook that
runs in them, and this is the one Python always does (https://docs.python.org/3/library/site.html). The
entrypoint puts this folder on PYTHONPATH only when artifacts go to GCS (`command.build_launch`); see
`infra/mlflow_server/gcs_signing.py` for why URL signing needs it.
"""

from infra.mlflow_server.gcs_signing import install

install()
