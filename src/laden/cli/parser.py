"""The command line's grammar: `laden [URL...]` opens the app, sub-commands run headless."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.known_sources import KNOWN_SOURCES
from ..core.version import __version__
from .put import add_put_parser

COMMANDS = ("get", "put", "run", "list", "resume", "pause", "remove", "verify", "repair",
            "settings")

DESCRIPTION = """\
laden: a terminal download manager.

  laden [URL...]             open the app (with these URLs queued); saved sessions resume
  laden get URL... [opts]    download headless, with progress; Ctrl-C pauses, rerun resumes
  laden put LOCAL... s3://B/P upload files or folders headless; Ctrl-C pauses, rerun resumes
  laden run MANIFEST         download (and upload) every item of a YAML or TOML manifest;
                             rerun resumes
  laden list                 show the downloads in the journal (--unfinished-uploads: the
                             uploads begun at a service and never finished)
  laden resume ID|--all      continue paused or interrupted downloads headless
  laden pause ID             mark a download paused
  laden remove ID            forget a download (--delete-file deletes its file too); an
                             upload is aborted at the service (--unfinished-uploads: all)
  laden verify ID|PATH|--all check a finished file against its recorded checksum (and a
                             model file's structure), or an upload's object at the service
  laden repair ID|PATH       fetch again only the damaged pieces of a finished file
  laden settings             show the settings file and the values in force
"""


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"laden: error: {message} (see laden {self.prog.split()[-1]} --help)\n"
                  if " " in self.prog else f"laden: error: {message} (see laden --help)\n")


def build() -> argparse.ArgumentParser:
    parser = Parser(prog="laden", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"laden {__version__}")
    parser.add_argument("--log-level", default=None, metavar="LEVEL",
                        help="log detail in the log file: debug, info, warning, error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    get = commands.add_parser("get", help="download headless", description=(
        "Download URLs headless with a progress display (plain lines when output is not a "
        "terminal). Ctrl-C pauses and saves; running the same command again resumes."))
    get.add_argument("urls", nargs="*", metavar="URL", help="addresses to download")
    get.add_argument("--no-wait", action="store_true",
                     help="when another laden is already fetching the same addresses into the "
                          "same place, exit 3 at once instead of waiting for it")
    add_download_options(get)
    add_output_options(get)

    add_put_parser(commands)

    run = commands.add_parser("run", help="download every item of a manifest", description=(
        "Download every item a manifest (YAML or TOML; Kaiwo's format works as it is) lists, "
        "and upload its upload_items, headless, then print a summary. Exits 0 only if every "
        "item succeeded. Ctrl-C or SIGTERM pauses and saves; running the same command again "
        "resumes."))
    run.add_argument("manifest", metavar="MANIFEST", help="the manifest file")
    run.add_argument("--max-workers", type=int, metavar="N",
                     help="files downloading at the same time (default 8)")
    run.add_argument("--dry-run", action="store_true",
                     help="list what would be downloaded, the total size and whether it fits "
                          "on the disk, without downloading")
    run.add_argument("--verify", action="store_true",
                     help="hash the files an earlier run downloaded before keeping them "
                          "(otherwise only their size is checked), and compare the uploads "
                          "it finished with their objects at the service")
    run.add_argument("--shard", metavar="I/N",
                     help="download only shard I of N (0-based): the objects whose target path "
                          "hashes to I, folders included")
    run.add_argument("--shards", type=int, metavar="N",
                     help="split into N shards; this one is $JOB_COMPLETION_INDEX "
                          "(a Kubernetes Indexed Job) or $AWS_BATCH_JOB_ARRAY_INDEX")
    run.add_argument("--status", action="store_true",
                     help="with --shards N: read the shards' result files and say whether the "
                          "whole job is complete (exit 0), failed for good (4) or not yet (1)")
    add_output_options(run)  # -q, --json, --log-level

    listing = commands.add_parser("list", help="show the downloads in the journal",
                                  description="Show every download and upload the journal "
                                              "knows, with its id.")
    listing.add_argument("--json", action="store_true", help="one JSON object per download")
    listing.add_argument("--unfinished-uploads", action="store_true",
                         help="only the uploads laden began in parts at a service and never "
                              "finished (their parts are stored, and billed, until finished "
                              "or aborted)")
    listing.add_argument("--at", metavar="ADDRESS",
                         help="with --unfinished-uploads: also ask the service for the "
                              "unfinished uploads under ADDRESS (s3://bucket/prefix) that "
                              "laden's journal does not know")
    add_credential_options(listing)  # for --at

    resume = commands.add_parser("resume", help="continue downloads headless", description=(
        "Continue paused, failed or interrupted downloads and wait for them. Credentials are "
        "never stored: give them again (options, ~/.netrc or the environment)."))
    resume.add_argument("ids", nargs="*", metavar="ID")
    resume.add_argument("--all", action="store_true", help="every unfinished download")
    resume.add_argument(*NO_FORMAT_CHECK, **NO_FORMAT_CHECK_HELP)
    add_credential_options(resume)
    add_output_options(resume)

    pause = commands.add_parser("pause", help="mark downloads paused")
    pause.add_argument("ids", nargs="+", metavar="ID")

    remove = commands.add_parser("remove", help="forget downloads", description=(
        "Forget downloads and delete their partial files; forget uploads and abort their "
        "unfinished uploads at the service."))
    remove.add_argument("ids", nargs="*", metavar="ID")
    remove.add_argument("--delete-file", action="store_true",
                        help="also delete the finished file (never an upload's local file)")
    remove.add_argument("--unfinished-uploads", action="store_true",
                        help="abort every upload laden began at a service and never finished "
                             "(or those of the IDs given) and forget them; one the service "
                             "cannot be asked to abort is kept (exit 1)")
    add_credential_options(remove)
    remove.add_argument("--log-level", default=argparse.SUPPRESS, metavar="LEVEL",
                        help="log detail in the log file: debug, info, warning, error")

    verify = commands.add_parser("verify", help="re-check finished files", description=(
        "Check a finished file's size and checksum against what the journal recorded (or "
        "against --checksum). The first check of a file with no known checksum records one. "
        "A finished upload is checked at the service: the local file's size and CRC32C are "
        "compared with the object's."))
    verify.add_argument("targets", nargs="*", metavar="ID|PATH")
    verify.add_argument("--all", action="store_true",
                        help="every finished download and upload")
    verify.add_argument("--checksum", metavar="ALGO:HEX",
                        help="the checksum it must have (reported; the download's state "
                             "changes only with --record)")
    verify.add_argument("--record", action="store_true",
                        help="with --checksum: a mismatch marks the download failed (laden "
                             "resume then fetches it again), a match marks it done")
    add_credential_options(verify)  # an upload's service is asked for its object

    repair = commands.add_parser("repair", help="mend damaged finished files", description=(
        "Find the damaged 4 MiB pieces of a finished file by the piece hashes recorded while it "
        "downloaded, fetch only those again (when the remote file is unchanged), write them in "
        "place, and check the whole file against its checksum."))
    repair.add_argument("targets", nargs="+", metavar="ID|PATH")
    add_credential_options(repair)

    commands.add_parser("settings", help="show the settings in force",
                        description="Show the settings file's path and the values in force.")
    return parser


NO_FORMAT_CHECK = ("--no-format-check",)
NO_FORMAT_CHECK_HELP = dict(
    action="store_true", dest="no_format_check",
    help="do not check the structure of model files (.safetensors, .gguf, .pt, .pth, .bin, "
         ".npz, .npy, .onnx) before their final rename; a file that failed the check is kept "
         "by resuming it with this")


RETRY_FLAGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--retries",), dict(type=int, metavar="N", help="retries after errors")),
    (("--retry-backoff",), dict(
        type=float, metavar="SECONDS",
        help="wait before the first retry, doubling after each (default 0.5)")),
    (("--retry-max-backoff",), dict(
        type=float, metavar="SECONDS", help="longest wait between two retries (default 30)")),
    (("--max-retry-after",), dict(
        type=float, metavar="SECONDS",
        help="longest wait a server's Retry-After is honoured for (default 300)")),
    (("--retry-on",), dict(
        metavar="KINDS",
        help="errors worth a retry, e.g. timeout,refused,dropped,server-error,slow-down,"
             "unresolved (default all); the retry options are kept with the download, so a "
             "resume keeps them")),
)
"""The retry options of `get` and `put`."""


def add_download_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("download options")
    group.add_argument("-o", "--output", "--dir", dest="output", metavar="DIR",
                       help="folder to save into (default: download_dir setting, or Downloads)")
    group.add_argument("-O", "--name", dest="name", metavar="NAME",
                       help="file name to save as (one URL only)")
    group.add_argument("-i", "--input-file", metavar="FILE",
                       help="read URLs from FILE, one per line (aria2 input files work too)")
    group.add_argument("-c", "--connections", type=int, metavar="N",
                       help="connections per download, 1 to 32 (default 8)")
    group.add_argument("--max-active", type=int, metavar="N",
                       help="downloads at the same time (default 3)")
    group.add_argument("--limit-rate", metavar="RATE",
                       help="bandwidth limit for all downloads together, e.g. 5M (bytes/s)")
    group.add_argument("--checksum", metavar="ALGO:HEX",
                       help="expected checksum, e.g. sha256:9f86d0...; a mismatch fails")
    group.add_argument("--conflict", choices=("rename", "overwrite", "skip", "resume"),
                       help="when the file exists: rename (default), overwrite, skip, or "
                            "resume from it")
    for flags, extra in RETRY_FLAGS:
        group.add_argument(*flags, **extra)
    group.add_argument("--force", action="store_true",
                       help="download again a file already downloaded there (rerunning "
                            "a finished download otherwise keeps the file)")
    group.add_argument("--verify", action="store_true",
                       help="hash a file already downloaded there before keeping it, "
                            "instead of checking its size only")
    group.add_argument(*NO_FORMAT_CHECK, **NO_FORMAT_CHECK_HELP)
    group.add_argument("--glob", metavar="PATTERN",
                       help="for folder and prefix addresses: only files matching PATTERN "
                            "(* stays in a folder, ** crosses folders; no / matches any depth); "
                            "makes an http(s) address a folder page whose links are fetched")
    group.add_argument("--include", action="append", metavar="GLOB",
                       help="for folders and whole Hugging Face repositories: only files "
                            "matching GLOB (repeatable)")
    group.add_argument("--exclude", action="append", metavar="GLOB",
                       help="leave out files matching GLOB (repeatable)")
    group.add_argument("--revision", metavar="REV",
                       help="Hugging Face branch, tag or commit (default main)")
    add_credential_options(parser)


def add_credential_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection and credentials (never stored)")
    group.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                       help="extra request header (repeatable)")
    group.add_argument("-u", "--user", metavar="USER[:PASSWORD]", help="basic auth credentials")
    group.add_argument("--bearer", metavar="TOKEN", help="bearer token (Authorization header)")
    group.add_argument("--no-netrc", action="store_true", help="do not read ~/.netrc")
    group.add_argument("--ca-bundle", metavar="FILE", help="trust the CAs in FILE for TLS")
    group.add_argument("-k", "--insecure", action="store_true",
                       help="do not check TLS certificates (unsafe)")
    group.add_argument("--proxy", metavar="URL",
                       help="proxy to use (default: HTTP(S)_PROXY and NO_PROXY)")
    add_cloud_options(parser)


# Object-store and hub options, as each source declares them (`core.known_sources`): a flag's
# dest is the source setting of the same name (`--s3-endpoint-url` -> `s3_endpoint_url`), the
# key manifests and the settings file use too. A FILE option's path is kept with the download
# and the file read again on resume; the credentials themselves are never stored.
CLOUD_OPTIONS: tuple[tuple[str, str, str], ...] = tuple(
    (option.flag, option.metavar, option.help)
    for source in KNOWN_SOURCES for option in source.options
    if option.flag is not None and option.metavar is not None)
SECRET_CLOUD_OPTIONS = frozenset(
    option.key for source in KNOWN_SOURCES for option in source.options
    if option.flag is not None and option.secret)


def add_cloud_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "object stores, Hugging Face and Azure ML (each SDK's own credentials are used when "
        "none given)")
    for flag, metavar, text in CLOUD_OPTIONS:
        group.add_argument(flag, metavar=metavar, help=text)
    group.add_argument("--anonymous", action="store_true",
                       help="send no credentials to S3, GCS, Azure or the hub (public data)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    group.add_argument("--json", action="store_true",
                       help="print one JSON object per event, for other programs")
    # SUPPRESS: given here or before the command, whichever the user wrote wins.
    group.add_argument("--log-level", default=argparse.SUPPRESS, metavar="LEVEL",
                       help="log detail in the log file: debug, info, warning, error")
