"""Uploads to the Hugging Face Hub, through huggingface_hub's commit API and `HfSource`'s client.

A file goes whole (`whole_uploads`): `preupload_lfs_files` asks the hub how the path is stored
(its preupload answer); a large file ("lfs") goes through the LFS batch API, whose answer
leaves out the upload action for an object the hub holds already, so a rerun sends nothing
again; then `create_commit` makes one commit of the file on the branch, a small ("regular")
file inline in it. The path appears on the branch only at that commit.

The body is a file object, not a path. huggingface_hub then takes the LFS route (the Xet
protocol reads paths only, in native code), so laden's reader sees every byte as the HTTP
client takes it: progress in bytes, the rate limit, pause and cancel mid-file, and the check
that the file is still the one pinned. One commit per file: each file is its own transfer in
the queue (paused, resumed, removed and verified alone), and its name appears with its own
commit. The hub limits commits per repository per hour; a 429 is retried after its wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ..core.errors import DestinationExists, InputError, LadenError, Permanent, RemoteError
from .hf import ERRORS, HubCall
from .requests_log import logged_request
from .whole_uploads import StoredFile

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from .hf import HfSource

COMMIT_TRIES = 5
"""Commits tried with `--conflict fail` while other commits keep moving the branch."""

_EXPECTED = ("Uploading files as a binary IO buffer is not supported by Xet",
             "No files have been modified since last commit")
"""huggingface_hub's warnings (on its own stderr handler) about what laden asks on purpose:
the LFS route for a file object, and no commit for a file the branch holds already."""


class _Expected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_EXPECTED)


for _name in ("huggingface_hub._commit_api", "huggingface_hub.hf_api"):
    logging.getLogger(_name).addFilter(_Expected())


class HfUploader:
    """The hub's `sources.whole_uploads.WholeFileUploader`."""

    whole_file = True
    min_part = 0
    max_parts = 1  # one part: the whole file (see `whole_uploads`)

    def __init__(self, source: HfSource) -> None:
        from huggingface_hub import constants
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        self._source = source
        # laden shows the progress itself; huggingface_hub's bars (tqdm, on stderr, e.g.
        # "Upload 0 LFS files" when the hub holds the object) would write over it. Its switch
        # is process-wide; an explicit HF_HUB_DISABLE_PROGRESS_BARS=0 is left alone.
        if constants.HF_HUB_DISABLE_PROGRESS_BARS is not False and not (
                are_progress_bars_disabled()):
            disable_progress_bars()

    def stored(self, url: str, options: DownloadOptions, *,
               revision: str | None = None) -> StoredFile | None:
        from huggingface_hub.hf_api import RepoFile

        call = self._source.hub(url, options)
        path = _path(url, call)
        address = call.address
        with ERRORS.translating(**call.facts), logged_request("paths-info", url) as answer:
            found = call.api.get_paths_info(address.repo_id, [path], expand=False,
                                            revision=revision or call.revision,
                                            repo_type=address.repo_type)
            answer.status = f"{len(found)} found"
        for entry in found:
            if entry.path != path:
                continue
            if not isinstance(entry, RepoFile):
                raise InputError(f"{url} is a folder on the hub; name a file in it")
            return StoredFile(int(entry.size), entry.lfs.sha256 if entry.lfs else None,
                              entry.blob_id)
        return None

    def send_file(self, url: str, body: BinaryIO, size: int, sha256: str,
                  options: DownloadOptions, *, only_new: bool,
                  before_commit: Callable[[], None]) -> str:
        from huggingface_hub import CommitOperationAdd
        from huggingface_hub.lfs import UploadInfo

        call = self._source.hub(url, options)
        path = _path(url, call)
        address = call.address
        operation = CommitOperationAdd(path_in_repo=path, path_or_fileobj=b"")
        # laden hashed the file as it pinned it: the hub gets that digest, and the file is
        # read once more only to be sent, not again to be hashed.
        sample = body.read(512)
        body.seek(0)
        operation.path_or_fileobj = body
        operation.upload_info = UploadInfo(size=size, sample=sample,
                                           sha256=bytes.fromhex(sha256))
        with _translating(call), logged_request("preupload", url, 0, size) as answer:
            call.api.preupload_lfs_files(address.repo_id, [operation], revision=call.revision,
                                         repo_type=address.repo_type)
            answer.status = "done"
        message = str(options.source_settings.get("commit_message") or
                      f"Upload {path} with laden")
        for _ in range(COMMIT_TRIES):
            parent = self._free_at(url, call, options) if only_new else None
            before_commit()
            try:
                with _translating(call), logged_request("commit", url) as answer:
                    commit = call.api.create_commit(
                        address.repo_id, [operation], commit_message=message,
                        revision=call.revision, repo_type=address.repo_type,
                        parent_commit=parent)
                    answer.status = f"commit {commit.oid}"
                return str(commit.oid)
            except RemoteError as exc:
                if not (only_new and exc.status == 412):
                    raise
                # The branch moved since `_free_at` looked: look again.
        raise DestinationExists(f"the branch of {url} kept moving; {COMMIT_TRIES} commits were "
                                "refused, and the conflict policy is fail")

    def _free_at(self, url: str, call: HubCall, options: DownloadOptions) -> str:
        """The commit the branch points to now, once the path is seen free at it.

        The commit is then made with `parent_commit` set to it: the hub refuses it (412) if the
        branch has moved since, so nothing committed after this look can be replaced. What it
        does not guarantee: another branch, or a pull request, may hold the path; and a commit
        elsewhere on the branch makes laden look again (up to COMMIT_TRIES times) rather than
        fail.
        """
        address = call.address
        with ERRORS.translating(**call.facts), logged_request("repo-info", url) as answer:
            head = call.api.repo_info(address.repo_id, repo_type=address.repo_type,
                                      revision=call.revision).sha
            answer.status = f"at {head}"
        if self.stored(url, options, revision=head) is not None:
            raise DestinationExists(f"{url} exists already, and the conflict policy is fail")
        return str(head)


def _path(url: str, call: HubCall) -> str:
    path = call.address.path
    if not path or path.endswith("/"):
        raise InputError(f"{url} does not name a file to upload to "
                         "(hf://[datasets/|spaces/]owner/repo[@revision]/path)")
    return path


class _translating:
    """`ERRORS.translating`, that also looks inside huggingface_hub's wrapping: an LFS transfer
    that fails is raised again as RuntimeError("Error while uploading ...") from its cause, and
    the cause may be laden's own (the reader stopped: paused, cancelled, the file changed)."""

    def __init__(self, call: HubCall) -> None:
        self._facts = call.facts

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, LadenError):
                raise cause
            if _answered(cause) or cause.__cause__ is None:
                break
            cause = cause.__cause__
        found = cause if cause is not None else exc
        if isinstance(found, ValueError) and "LFS batch API returned errors" in str(found):
            raise Permanent(f"the Hugging Face Hub refused the upload to {self._facts['url']}: "
                            f"{str(found).splitlines()[-1][:200]}") from None
        said = getattr(found, "server_message", None)
        status = getattr(getattr(found, "response", None), "status_code", None)
        if status == 401 and not self._facts["token"]:
            raise Permanent(f"uploading to {self._facts['url']} needs a Hugging Face token "
                            "(HF_TOKEN, --hf-token-file, or your hub login)", status=401) from None
        if status in (400, 409, 413, 422) and said:
            # The hub says why it refused (a file too large for git, an LFS object missing):
            # that line, not the bare status.
            raise Permanent(f"the Hugging Face Hub refused the upload to {self._facts['url']}: "
                            f"{str(said).strip().splitlines()[0][:200]}", status=status) from None
        error = ERRORS.translate(found, **self._facts)
        if error is found and not isinstance(error, LadenError):
            return False  # a bug: as it was raised
        raise error from None


def _answered(exc: BaseException) -> bool:
    """Whether `exc` carries the hub's (or its storage's) HTTP answer."""
    return getattr(getattr(exc, "response", None), "status_code", None) is not None
