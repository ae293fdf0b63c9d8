"""Is this file what WhatsApp said it is? Magic bytes (the filetype library), hash and size limits.

A file that fails is quarantined by the caller: kept for inspection, never served as the declared type.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import filetype

MB = 1024 * 1024
LIMITS = {"image": 5 * MB, "audio": 16 * MB, "video": 16 * MB, "document": 100 * MB, "sticker": 500 * 1024}
STATIC_STICKER_LIMIT = 100 * 1024
ALLOWED = {
    "image": {"image/jpeg", "image/png"},
    "audio": {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus"},
    "video": {"video/mp4", "video/3gpp"},
    "sticker": {"image/webp"},
}
# filetype names some types differently from what WhatsApp declares
EQUIVALENT = {
    "audio/x-m4a": "audio/mp4", "video/x-m4v": "video/mp4", "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac", "audio/opus": "audio/ogg", "video/3gpp": "video/3gpp",
}
EXECUTABLE = {"application/x-executable", "application/x-msdownload", "application/x-mach-binary",
              "application/x-elf", "application/x-sharedlib", "application/vnd.microsoft.portable-executable"}
TEXT_DOCUMENTS = {"text/plain", "text/csv", "text/tab-separated-values", "application/json"}


@dataclass(frozen=True)
class MediaCheck:
    ok: bool
    reason: str | None
    sniffed: str | None
    sha256: str
    size: int


def _norm(mime: str | None) -> str | None:
    if not mime:
        return None
    base = mime.split(";")[0].strip().lower()
    return EQUIVALENT.get(base, base)


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


def check_media(data: bytes, declared_mime: str | None, expected_sha256: str | None, kind: str) -> MediaCheck:
    digest = hashlib.sha256(data).hexdigest()
    guess = filetype.guess(data)
    sniffed = _norm(guess.mime) if guess else None
    declared = _norm(declared_mime)

    def verdict(reason: str | None) -> MediaCheck:
        return MediaCheck(reason is None, reason, sniffed, digest, len(data))

    if expected_sha256 and expected_sha256.lower() != digest:
        return verdict("the file's SHA-256 does not match the one WhatsApp announced")
    limit = LIMITS.get(kind)
    if limit is None:
        return verdict(f"unknown media kind '{kind}'")
    if kind == "sticker" and sniffed == "image/webp" and b"ANIM" not in data[:64]:
        limit = STATIC_STICKER_LIMIT
    if len(data) > limit:
        return verdict(f"the file is {len(data)} bytes, over WhatsApp's {limit}-byte limit for {kind}s")
    if sniffed in EXECUTABLE or data[:4] in (b"\x7fELF", b"MZ\x90\x00") or data[:2] == b"MZ":
        return verdict("the file is a program, not media")
    if kind == "document":
        if sniffed is None:
            if declared in TEXT_DOCUMENTS and not _looks_binary(data):
                return verdict(None)
            if declared and declared.startswith("text/") and not _looks_binary(data):
                return verdict(None)
            return verdict(f"the file's type could not be recognised (declared {declared or 'nothing'})")
        if declared and sniffed != declared and not _office_match(sniffed, declared):
            return verdict(f"the file is really {sniffed}, not {declared}")
        return verdict(None)
    if sniffed is None:
        return verdict(f"the file is not a recognisable {kind} (declared {declared or 'nothing'})")
    if sniffed not in ALLOWED[kind] and not (kind == "audio" and sniffed in {"audio/mp4", "video/mp4"}):
        return verdict(f"{sniffed} is not an allowed {kind} type")
    if declared and sniffed != declared and not _audio_container_match(sniffed, declared):
        return verdict(f"the file is really {sniffed}, not {declared}")
    return verdict(None)


def _office_match(sniffed: str, declared: str) -> bool:
    """DOCX/XLSX/PPTX are zip files inside; filetype may call them either."""
    office = declared.startswith("application/vnd.openxmlformats") or declared.startswith("application/vnd.ms-")
    return office and sniffed in {"application/zip", declared}


def _audio_container_match(sniffed: str, declared: str) -> bool:
    return {sniffed, declared} <= {"audio/mp4", "video/mp4", "audio/aac"}


def media_path(data_dir: Path, key: str) -> Path:
    return data_dir / key


def store_media(data_dir: Path, data: bytes) -> str:
    """Content-addressed: the same bytes are stored once, written atomically."""
    digest = hashlib.sha256(data).hexdigest()
    key = f"media/{digest[:2]}/{digest[2:4]}/{digest}"
    path = data_dir / key
    if path.exists():
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return key
