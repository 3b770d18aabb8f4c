"""`laden put LOCAL... REMOTE`: upload files and folders headless, as `laden get` downloads.

The same options reach the service (credentials, endpoint, connections, rate limit, retries),
the same progress display, `--json` events and exit codes; Ctrl-C pauses and saves, and the
same command again (or `laden resume`) sends only the parts the service lacks.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..core.errors import InputError
from ..core.upload_policies import CONFLICTS, ON_CHANGE
from .logs import setup_logging


def cmd_put(args: argparse.Namespace) -> int:
    from .commands import _config, download_options, json_events, open_manager, watch, with_retry

    setup_logging(args.log_level)
    if len(args.paths) < 2:
        raise InputError("say what to upload and where: laden put LOCAL... s3://bucket/prefix")
    *paths, remote = args.paths
    config = _config(args)
    options = with_retry(download_options(args), config, args)
    if args.message:
        # Journalled with the upload's other settings: a resumed upload commits with it too.
        options = dataclasses.replace(options, source_settings={
            **options.source_settings, "commit_message": args.message})
    with open_manager(config) as manager, json_events(manager, args):
        with manager.adding_many():
            ids = manager.add_uploads(paths, remote, glob=args.glob, options=options,
                                      conflict=args.upload_conflict,
                                      on_change=args.on_change)
        return watch(manager, ids, args)


def add_put_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .parser import RETRY_FLAGS, add_credential_options, add_output_options

    put = commands.add_parser("put", help="upload files and folders headless", description=(
        "Upload files, or folders keeping their layout, to s3://bucket/key or "
        "s3://bucket/prefix/, az://container/blob (or an Azure blob https address), "
        "azureml://datastores/NAME/paths/PATH, gs://bucket/prefix/, ftp(s)://host/folder/, "
        "or a Hugging Face repository, hf://[datasets/|spaces/]owner/repo[@branch]/path/ "
        "(one commit per file). Large files go in parts (over several connections; to GCS "
        "and FTP in order over one); Ctrl-C pauses and saves, and running the same command "
        "again sends only what the service lacks. "
        "A file must not change until it is committed: if it does, its upload stops (or, "
        "with --on-change restart, starts again from the first byte)."))
    put.add_argument("paths", nargs="+", metavar="LOCAL... REMOTE",
                     help="files or folders, then where they go")
    group = put.add_argument_group("upload options")
    group.add_argument("-c", "--connections", type=int, metavar="N",
                       help="parts sent at once per file, 1 to 32 (default 8)")
    group.add_argument("--max-active", type=int, metavar="N",
                       help="files sent at the same time (default 3)")
    group.add_argument("--limit-rate", metavar="RATE",
                       help="bandwidth limit for all transfers together, e.g. 5M (bytes/s)")
    group.add_argument("--conflict", dest="upload_conflict", default=CONFLICTS[0],
                       choices=CONFLICTS,
                       help="when the remote name is taken: overwrite (default), skip when it "
                            "has the file's size and checksum already (CRC32C; Azure's "
                            "Content-MD5; GCS's CRC32C and MD5; SHA-256 or git blob id on "
                            "the hub; FTP: the size, and MD5 when the server offers it), or "
                            "fail (the service refuses to replace it; FTP checks just before "
                            "renaming)")
    group.add_argument("--on-change", default=ON_CHANGE[0], choices=ON_CHANGE,
                       help="when a file changes before its upload commits: stop (default; "
                            "nothing is committed) or restart it from the first byte")
    group.add_argument("-m", "--message", metavar="TEXT",
                       help="the commit message, where the service makes commits (the "
                            "Hugging Face Hub; default: Upload PATH with laden)")
    group.add_argument("--glob", metavar="PATTERN",
                       help="of a folder's files, only those whose path inside it matches "
                            "(* stays in a folder, ** crosses folders)")
    for flags, extra in RETRY_FLAGS:
        group.add_argument(*flags, **extra)
    add_credential_options(put)
    add_output_options(put)
