"""Checksum names and digests as people and services write them.

`sha256`, `SHA-256` and `sha-256` are one algorithm; a digest may come as hex or as base64; an
S3 multipart ETag names its part size. Parsing these is shared by the command line, the
manifest, the journal and the sources, so it lives below all of them; hashing is the engine's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from .errors import InputError

# Aliases people and servers use, mapped to hashlib names (crc32c comes from google-crc32c).
_ALIASES = {
    "md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha224": "sha224", "sha-224": "sha224",
    "sha256": "sha256", "sha-256": "sha256", "sha384": "sha384", "sha-384": "sha384",
    "sha512": "sha512", "sha-512": "sha512", "blake2b": "blake2b", "blake2s": "blake2s",
    "sha3-256": "sha3_256", "sha3_256": "sha3_256", "sha3-512": "sha3_512",
    "sha3_512": "sha3_512", "crc32c": "crc32c", "crc32": "crc32", "git-sha1": "git-sha1",
}
S3_ETAG_NAME = re.compile(r"s3-etag-([1-9][0-9]*)")
_S3_ETAG_VALUE = re.compile(r"([0-9a-f]{32})-([1-9][0-9]*)")

def algorithm_name(name: str) -> str:
    lowered = name.strip().lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    if S3_ETAG_NAME.fullmatch(lowered):
        return lowered
    known = ", ".join(sorted({v for v in _ALIASES.values()}))
    raise InputError(f"unknown checksum algorithm {name!r} (known: {known}, s3-etag-PARTSIZE)")


def s3_etag_algorithm(part_size: int) -> str:
    """The algorithm name for the ETag of an S3 multipart upload made of `part_size` parts."""
    return f"s3-etag-{part_size}"


def digest_size(algorithm: str) -> int:
    algorithm = algorithm_name(algorithm)
    if algorithm in ("crc32c", "crc32"):
        return 4
    if algorithm == "git-sha1":
        return 20
    if S3_ETAG_NAME.fullmatch(algorithm):
        return 16
    return hashlib.new(algorithm).digest_size


def parse_checksum(text: str) -> tuple[str, str]:
    """`sha256:HEX` (or `sha256=HEX`, or base64 of the digest) as (algorithm, lowercase hex)."""
    for separator in (":", "="):
        algorithm, found, value = text.partition(separator)
        if found and algorithm.strip():
            break
    else:
        raise InputError(f"checksum must look like sha256:HEX, not {text!r}")
    algorithm = algorithm_name(algorithm)
    return algorithm, normalise_digest(algorithm, value.strip())


def normalise_digest(algorithm: str, value: str) -> str:
    """A digest given as hex or base64, as lowercase hex; InputError when it is neither."""
    size = digest_size(algorithm)
    value = value.strip().strip(":")
    if S3_ETAG_NAME.fullmatch(algorithm_name(algorithm)):
        etag = value.strip('"').lower()
        if _S3_ETAG_VALUE.fullmatch(etag):
            return etag
        raise InputError(f"an S3 multipart ETag looks like MD5HEX-PARTS, not {value!r}")
    if len(value) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        return raw.hex()
    raise InputError(
        f"{algorithm} checksum must be {2 * size} hex digits, not {value!r} ({len(value)} chars)"
    )
