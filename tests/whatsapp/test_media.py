import hashlib
import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigdesk.whatsapp.media import check_media, kind_for_mime, store_media

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 200
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 20
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
PE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200
MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 200
OGG = b"OggS\x00\x02" + b"\x00" * 200
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + b"\x00" * 200
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 200
THREE_GP = b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x00isom" + b"\x00" * 200
STATIC_WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 200
ANIMATED_WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x12\x00\x00\x00" + b"\x00" * 200
OLD_WORD = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
KB = 1024


def sha(data):
    return hashlib.sha256(data).hexdigest()


def docx():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("[Content_Types].xml", "_rels/.rels", "word/document.xml"):
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


def test_a_png_declared_as_png_passes():
    check = check_media(PNG, "image/png", sha(PNG), "image")
    assert check.ok and check.reason is None and check.sniffed == "image/png"
    assert check.sha256 == sha(PNG) and check.size == len(PNG)


def test_a_pdf_declared_as_jpeg_is_refused():
    check = check_media(PDF, "image/jpeg", None, "image")
    assert not check.ok and "application/pdf" in check.reason


@pytest.mark.parametrize("program", [ELF, PE, MACHO], ids=["elf", "pe", "mach-o"])
@pytest.mark.parametrize(
    ("kind", "declared"),
    [
        ("image", "image/jpeg"),
        ("audio", "audio/ogg"),
        ("video", "video/mp4"),
        ("sticker", "image/webp"),
        ("document", "application/pdf"),
        ("document", "text/plain"),
        ("document", None),
    ],
)
def test_a_program_never_passes_as_media_or_document(program, kind, declared):
    check = check_media(program, declared, sha(program), kind)
    assert not check.ok and "program" in check.reason


def test_a_hash_mismatch_is_refused():
    check = check_media(PNG, "image/png", sha(JPEG), "image")
    assert not check.ok and "SHA-256" in check.reason


def test_oversized_files_are_refused():
    big = PNG + b"\x00" * (5 * KB * KB)
    assert "limit" in check_media(big, "image/png", None, "image").reason
    assert not check_media(b"", "image/png", None, "image").ok


def test_stickers_have_separate_limits_for_static_and_animated():
    assert check_media(STATIC_WEBP, "image/webp", None, "sticker").ok
    assert not check_media(STATIC_WEBP + b"\x00" * 100 * KB, "image/webp", None, "sticker").ok
    assert check_media(ANIMATED_WEBP + b"\x00" * 300 * KB, "image/webp", None, "sticker").ok
    assert not check_media(ANIMATED_WEBP + b"\x00" * 500 * KB, "image/webp", None, "sticker").ok
    assert not check_media(JPEG, "image/webp", None, "sticker").ok


@pytest.mark.parametrize(
    ("data", "declared", "kind"),
    [
        (OGG, "audio/ogg; codecs=opus", "audio"),
        (M4A, "audio/mp4", "audio"),
        (MP4, "video/mp4", "video"),
        (THREE_GP, "video/3gpp", "video"),
        (JPEG, "image/jpg", "image"),
        (PNG, None, "image"),
        (PNG, "application/octet-stream", "image"),
    ],
)
def test_whatsapps_media_types_pass(data, declared, kind):
    check = check_media(data, declared, sha(data), kind)
    assert check.ok, check.reason


@pytest.mark.parametrize(
    ("data", "declared", "kind", "reason"),
    [
        (PNG, "image/jpeg", "image", "really image/png"),
        (b"GIF89a" + b"\x00" * 64, "image/gif", "image", "not an allowed image type"),
        (MP4, "video/mp4", "image", "not an allowed image type"),
        (b"#!/bin/sh\nrm -rf ~\n", "image/jpeg", "image", "not a recognisable image"),
        (OGG, "audio/ogg", "sticker", "not an allowed sticker type"),
        (PNG, "image/png", "hologram", "unknown media kind"),
    ],
)
def test_media_that_is_not_what_it_claims_is_refused(data, declared, kind, reason):
    check = check_media(data, declared, None, kind)
    assert not check.ok and reason in check.reason


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PDF, "application/pdf"),
        (PDF, "application/octet-stream"),
        (PDF, None),
        (docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (OLD_WORD, "application/msword"),
        (b"name,qty\ncake,2\n", "text/csv"),
        (b"Order notes\n", "text/plain; charset=utf-8"),
        (b'{"order": 1}', "application/json"),
        (b"#!/bin/sh\necho hi\n", "text/x-shellscript"),
        (JPEG, "image/jpeg"),
    ],
)
def test_documents_pass_when_their_type_is_known(data, declared):
    check = check_media(data, declared, sha(data), "document")
    assert check.ok, check.reason


@pytest.mark.parametrize(
    ("data", "declared", "reason"),
    [
        (b"\x00\x01binary", "text/csv", "could not be recognised"),
        (b"\x13\x37 unknown blob", "application/octet-stream", "could not be recognised"),
        (PDF, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "really application/pdf"),
        (b"\x00asm\x01\x00\x00\x00" + b"\x00" * 32, "application/wasm", "program"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "application/x-sqlite3", "not a document type"),
    ],
)
def test_documents_of_unknown_or_disguised_type_are_refused(data, declared, reason):
    check = check_media(data, declared, None, "document")
    assert not check.ok and reason in check.reason


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=512),
    st.sampled_from(["image", "audio", "video", "sticker", "document"]),
    st.sampled_from([None, "image/jpeg", "image/png", "audio/ogg", "video/mp4", "application/pdf", "text/plain"]),
)
def test_any_bytes_get_a_verdict_and_executables_never_pass(data, kind, declared):
    for payload in (data, b"\x7fELF" + data, b"MZ" + data):
        check = check_media(payload, declared, None, kind)
        assert check.ok is (check.reason is None)
        if payload[:2] in (b"\x7fE", b"MZ"):
            assert not check.ok


def test_mime_types_map_to_whatsapp_kinds():
    assert [
        kind_for_mime(m)
        for m in ("image/png", "image/webp", "audio/ogg; codecs=opus", "video/3gpp", "application/pdf", None)
    ] == ["image", "sticker", "audio", "video", "document", "document"]


def test_store_is_content_addressed_and_idempotent(tmp_path):
    key = store_media(tmp_path, PNG)
    assert key == f"media/{sha(PNG)[:2]}/{sha(PNG)[2:4]}/{sha(PNG)}"
    assert (tmp_path / key).read_bytes() == PNG
    before = (tmp_path / key).stat().st_mtime_ns
    assert store_media(tmp_path, PNG) == key
    assert (tmp_path / key).stat().st_mtime_ns == before
    assert (tmp_path / key).stat().st_mode & 0o077 == 0
    assert store_media(tmp_path, JPEG) != key


def test_concurrent_stores_of_the_same_bytes_leave_one_whole_file(tmp_path):
    data = os.urandom(256 * KB)
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: store_media(tmp_path, data), range(16)))
    assert len(keys) == 1
    folder = (tmp_path / keys.pop()).parent
    assert [p.name for p in folder.iterdir()] == [sha(data)]
    assert (folder / sha(data)).read_bytes() == data
