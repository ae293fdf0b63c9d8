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
    "image": frozenset({"image/jpeg", "image/png"}),
    "audio": frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "sticker": frozenset({"image/webp"}),
}
# Names that differ between what phones declare, what filetype reports and what Meta documents.
EQUIVALENT = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac",
    "audio/opus": "audio/ogg",
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/3gpp": "video/3gpp",
    "video/x-m4v": "video/mp4",
    "application/ogg": "audio/ogg",
    "text/comma-separated-values": "text/csv",
}
EXECUTABLE = frozenset(
    {
        "application/x-executable",
        "application/x-msdownload",
        "application/x-mach-binary",
        "application/x-elf",
        "application/x-sharedlib",
        "application/vnd.microsoft.portable-executable",
        "application/wasm",
        "application/x-google-chrome-extension",
        "application/x-deb",
        "application/x-rpm",
        "application/x-shockwave-flash",
    }
)
EXECUTABLE_MAGIC = (
    b"\x7fELF",
    b"MZ",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)
OLE = frozenset({"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"})
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OOXML_PREFIX = "application/vnd.openxmlformats-officedocument."
ODF_PREFIX = "application/vnd.oasis.opendocument."
DOCUMENTS = OLE | frozenset(
    {
        "application/pdf",
        "application/rtf",
        "application/epub+zip",
        "application/postscript",
        "application/zip",
        "application/gzip",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/x-tar",
        f"{OOXML_PREFIX}wordprocessingml.document",
        f"{OOXML_PREFIX}spreadsheetml.sheet",
        f"{OOXML_PREFIX}presentationml.presentation",
        f"{ODF_PREFIX}text",
        f"{ODF_PREFIX}spreadsheet",
        f"{ODF_PREFIX}presentation",
    }
)
# Photos, recordings and videos are often sent "as a document" to keep their quality.
MEDIA_AS_DOCUMENT = frozenset(
    {
        "image/gif",
        "image/heic",
        "image/tiff",
        "image/bmp",
        "image/avif",
        "audio/x-wav",
        "audio/x-flac",
        "video/quicktime",
        "video/webm",
        "video/x-matroska",
    }
)
TEXT_DOCUMENTS = frozenset({"application/json", "application/xml", "application/x-subrip", "application/csv"})
ISO_MEDIA = frozenset({"audio/mp4", "video/mp4", "video/3gpp", "audio/aac"})
UNSPECIFIC = frozenset({"application/octet-stream", "binary/octet-stream", "application/unknown"})


@dataclass(frozen=True)
class MediaCheck:
    ok: bool
    reason: str | None
    sniffed: str | None
    sha256: str
    size: int


def normalise_mime(mime: str | None) -> str | None:
    if not mime:
        return None
    base = mime.split(";")[0].strip().lower()
    return EQUIVALENT.get(base, base) or None


def kind_for_mime(mime: str | None) -> str:
    """The WhatsApp message kind a MIME type is sent as; anything unusual travels as a document."""
    normal = normalise_mime(mime)
    for kind, allowed in ALLOWED.items():
        if normal in allowed:
            return kind
    return "document"


def is_executable(data: bytes, sniffed: str | None = None) -> bool:
    return sniffed in EXECUTABLE or data.startswith(EXECUTABLE_MAGIC)


def is_animated_webp(data: bytes) -> bool:
    """The VP8X chunk's animation flag; an ANIM chunk may sit behind ICC or EXIF chunks."""
    return (
        data[:4] == b"RIFF"
        and data[8:12] == b"WEBP"
        and data[12:16] == b"VP8X"
        and len(data) > 20
        and bool(data[20] & 0x02)
    )


def _looks_like_text(data: bytes) -> bool:
    return b"\x00" not in data[:65536]


def check_media(data: bytes, declared_mime: str | None, expected_sha256: str | None, kind: str) -> MediaCheck:
    digest = hashlib.sha256(data).hexdigest()
    guess = filetype.guess(data) if data else None
    sniffed = normalise_mime(guess.mime) if guess else None
    declared = normalise_mime(declared_mime)

    def verdict(reason: str | None) -> MediaCheck:
        return MediaCheck(reason is None, reason, sniffed, digest, len(data))

    if expected_sha256 and expected_sha256.strip().lower() != digest:
        return verdict("the file's SHA-256 does not match the one WhatsApp announced")
    limit = LIMITS.get(kind)
    if limit is None:
        return verdict(f"unknown media kind '{kind}'")
    if not data:
        return verdict("the file is empty")
    if kind == "sticker" and not is_animated_webp(data):
        limit = STATIC_STICKER_LIMIT
    if len(data) > limit:
        return verdict(f"the file is {len(data)} bytes, over WhatsApp's {limit}-byte limit for {kind}s")
    if is_executable(data, sniffed):
        return verdict("the file is a program, not media")
    if kind == "document":
        return verdict(_document_problem(data, sniffed, declared))
    if sniffed is None:
        return verdict(f"the file is not a recognisable {kind} (declared {declared or 'nothing'})")
    if sniffed not in ALLOWED[kind] and not (kind == "audio" and sniffed == "video/mp4"):
        return verdict(f"{sniffed} is not an allowed {kind} type")
    if declared and declared not in UNSPECIFIC and sniffed != declared and not _same_container(sniffed, declared):
        return verdict(f"the file is really {sniffed}, not {declared}")
    return verdict(None)


def _document_problem(data: bytes, sniffed: str | None, declared: str | None) -> str | None:
    if sniffed is None and data.startswith(OLE_MAGIC) and declared in OLE:
        return None  # older Word/Excel/PowerPoint files; filetype only recognises some of them
    if sniffed is None:
        textual = declared is not None and (declared.startswith("text/") or declared in TEXT_DOCUMENTS)
        if textual and _looks_like_text(data):
            return None
        return f"the file's type could not be recognised (declared {declared or 'nothing'})"
    if not _document_type(sniffed):
        return f"{sniffed} is not a document type SigDesk accepts"
    if declared is None or declared in UNSPECIFIC or sniffed == declared:
        return None
    if _office_match(sniffed, declared) or _same_container(sniffed, declared):
        return None
    return f"the file is really {sniffed}, not {declared}"


def _document_type(sniffed: str) -> bool:
    return sniffed in DOCUMENTS or sniffed in MEDIA_AS_DOCUMENT or kind_for_mime(sniffed) != "document"


def _office_match(sniffed: str, declared: str) -> bool:
    """Office files are zip (OOXML, ODF) or OLE (doc, xls, ppt) inside; magic bytes cannot always tell which."""
    if declared.startswith((OOXML_PREFIX, ODF_PREFIX)) or declared == "application/epub+zip":
        return sniffed == "application/zip" or sniffed.startswith((OOXML_PREFIX, ODF_PREFIX))
    return declared in OLE and sniffed in OLE


def _same_container(sniffed: str, declared: str) -> bool:
    """MP4, M4A and 3GP share the ISO media container; the brand inside decides what filetype reports."""
    return {sniffed, declared} <= ISO_MEDIA


def media_path(data_dir: Path, key: str) -> Path:
    return data_dir / key


def store_media(data_dir: Path, data: bytes) -> str:
    """Content-addressed: the same bytes are stored once, written atomically, so a crash leaves no half file."""
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
