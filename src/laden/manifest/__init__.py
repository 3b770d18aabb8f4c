"""Manifests: many downloads described in one YAML or TOML file, run headless by `laden run`.

The format is the Kaiwo downloader's, accepted as it is::

    download_root: /models               # default: the current folder
    download_items:
      - type: s3                         # s3, gcs, azure-blob, hf, http, ftp, azureml
        name: weights
        endpoint_url: http://minio:9000
        access_key_id_file: /secrets/s3/access_key_id
        secret_key_file: /secrets/s3/secret_key
        buckets:
          - name: models
            items:
              - file: llama/config.json
                target_path: llama/config.json
              - folder: llama/shards
                target_path: llama/shards
                glob: "*.safetensors"    # default **/*
      - type: hf
        repo_id: owner/repo
        files: [config.json]             # empty or missing: the whole repository
      - type: azureml                    # workspace, resource_group, subscription: as the
        url: azureml://jobs/train-42/outputs/default/paths/outputs/   # --azureml-* options
        target_path: run-42/

Every item may add `checksum`, `connections`, `limit_rate`, `overwrite` (`overwrite`, `skip`
an existing file, or `resume` from it) and `retry` (a table of `RetryPolicy`'s fields, such as
`{attempts: 10, backoff: 2, retry_on: [timeout, 5xx]}`). See `addresses.py` for how fields map
onto the sources. `upload_items` (beside or instead of `download_items`) send local files the
other way: see `uploads.py`.
"""

from __future__ import annotations

from .loading import ManifestError
from .model import Item, Manifest, Target
from .validation import load_manifest

__all__ = ["Item", "Manifest", "ManifestError", "Target", "load_manifest"]
