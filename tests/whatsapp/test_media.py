import hashlib

from sigdesk.whatsapp.media import check_media, store_media

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 200
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 20
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
OGG = b"OggS\x00\x02" + b"\x00" * 200


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_a_png_declared_as_png_passes():
    check = check_media(PNG, "image/png", sha(PNG), "image")
    assert check.ok and check.sniffed == "image/png"


def test_a_pdf_declared_as_jpeg_is_refused():
    check = check_media(PDF, "image/jpeg", None, "image")
    assert not check.ok and "application/pdf" in check.reason


def test_a_program_never_passes_as_media_or_document():
    assert not check_media(ELF, "image/jpeg", None, "image").ok
    assert "program" in check_media(ELF, "application/pdf", None, "document").reason


def test_a_hash_mismatch_is_refused():
    check = check_media(PNG, "image/png", sha(JPEG), "image")
    assert not check.ok and "SHA-256" in check.reason


def test_oversized_files_are_refused():
    big = PNG + b"\x00" * (5 * 1024 * 1024)
    assert "limit" in check_media(big, "image/png", None, "image").reason


def test_documents_and_voice_notes():
    assert check_media(PDF, "application/pdf", sha(PDF), "document").ok
    assert check_media(b"name,qty\ncake,2\n", "text/csv", None, "document").ok
    assert not check_media(b"\x00\x01binary", "text/csv", None, "document").ok
    assert check_media(OGG, "audio/ogg; codecs=opus", None, "audio").ok


def test_a_jpeg_sent_as_sticker_is_refused():
    assert not check_media(JPEG, "image/webp", None, "sticker").ok


def test_store_is_content_addressed_and_idempotent(tmp_path):
    key = store_media(tmp_path, PNG)
    assert key.endswith(sha(PNG)) and (tmp_path / key).read_bytes() == PNG
    assert store_media(tmp_path, PNG) == key
    assert (tmp_path / key).stat().st_mode & 0o077 == 0
