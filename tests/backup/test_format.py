"""The encrypted container on its own: round trips, and every kind of damage refused by name."""

from __future__ import annotations

import io
import os
import time

import pytest
from hypothesis import given, settings, strategies as st

from sigdesk.backup.format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    DamagedBackup,
    DecryptingReader,
    EncryptingWriter,
    KdfParams,
    NewerBackup,
    TruncatedBackup,
    WrongPassphrase,
    sealing_key,
)

FAST = KdfParams(log2_n=4, r=1, p=1)
CHUNK = 1024


def seal(data: bytes, passphrase: str = "pass phrase", chunk: int = CHUNK) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, passphrase, FAST, chunk_size=chunk)
    for start in range(0, len(data), 700):
        writer.write(data[start : start + 700])
    writer.close()
    return sink.getvalue()


def unseal(blob: bytes, passphrase: str = "pass phrase") -> bytes:
    reader = DecryptingReader(io.BytesIO(blob), passphrase)
    out = reader.read()
    reader.drain()
    return out


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000))
def test_round_trip_returns_the_same_bytes_for_any_length(data):
    assert unseal(seal(data)) == data


def test_ciphertext_reveals_no_plaintext_and_grows_by_one_tag_per_chunk():
    data = b"secret customer message " * 200
    blob = seal(data)
    assert b"secret customer" not in blob
    chunks = -(-len(data) // CHUNK)
    assert len(blob) == HEADER_SIZE + len(data) + 16 * chunks
    assert blob.startswith(MAGIC)


def test_two_backups_of_the_same_data_differ():
    assert seal(b"x" * 3000) != seal(b"x" * 3000)


def test_wrong_passphrase_is_named():
    with pytest.raises(WrongPassphrase, match="Wrong passphrase"):
        unseal(seal(b"data" * 1000), "not it")


def test_flipped_byte_in_any_chunk_is_refused():
    blob = bytearray(seal(os.urandom(4000)))
    for offset in (HEADER_SIZE + 3, HEADER_SIZE + CHUNK + 20, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[offset] ^= 0x01
        with pytest.raises(DamagedBackup, match="damaged"):
            unseal(bytes(damaged))


def test_file_cut_at_a_chunk_boundary_is_called_truncated():
    data = os.urandom(CHUNK * 3 + 10)
    blob = seal(data)
    cut = blob[: HEADER_SIZE + 2 * (CHUNK + 16)]
    with pytest.raises(DamagedBackup, match="truncated"):
        unseal(cut)


def test_file_cut_inside_a_chunk_is_refused():
    blob = seal(os.urandom(CHUNK * 2 + 10))
    with pytest.raises(DamagedBackup):
        unseal(blob[:-5])


@pytest.mark.parametrize("cut", [1, 5, 100, 16 + 511])
def test_file_cut_inside_its_last_part_says_cut_short_not_damaged(cut):
    blob = seal(os.urandom(512 * 5))  # a whole number of 512-byte records, like the tar stream inside a backup
    reader = DecryptingReader(io.BytesIO(blob[:-cut]), "pass phrase", record=512)
    with pytest.raises(TruncatedBackup, match="cut short"):
        reader.read()
        reader.drain()


def test_changed_last_part_of_a_whole_file_is_still_called_damaged():
    blob = bytearray(seal(os.urandom(512 * 5)))
    blob[-3] ^= 0x01
    reader = DecryptingReader(io.BytesIO(bytes(blob)), "pass phrase", record=512)
    with pytest.raises(DamagedBackup, match="damaged") as raised:
        reader.read()
    assert not isinstance(raised.value, TruncatedBackup)


def test_empty_file_says_cut_short():
    with pytest.raises(TruncatedBackup, match="cut short"):
        unseal(b"")
    with pytest.raises(TruncatedBackup, match="cut short"):
        unseal(MAGIC[:3])


def test_reordered_chunks_are_refused():
    blob = seal(os.urandom(CHUNK * 3))
    body = blob[HEADER_SIZE:]
    size = CHUNK + 16
    swapped = blob[:HEADER_SIZE] + body[size : 2 * size] + body[:size] + body[2 * size :]
    with pytest.raises(DamagedBackup):
        unseal(swapped)


def test_changed_header_setting_is_refused():
    blob = bytearray(seal(os.urandom(3000)))
    blob[HEADER_SIZE - 40] ^= 0x01  # inside the nonce prefix: bound into every chunk
    with pytest.raises(DamagedBackup):
        unseal(bytes(blob))


def test_newer_format_version_is_refused_with_update_advice():
    blob = bytearray(seal(b"data"))
    blob[len(MAGIC) : len(MAGIC) + 2] = (FORMAT_VERSION + 1).to_bytes(2, "big")
    with pytest.raises(NewerBackup, match="newer SigDesk"):
        unseal(bytes(blob))


def test_other_files_and_short_files_are_not_backups():
    with pytest.raises(DamagedBackup, match="not a SigDesk backup"):
        unseal(b"PK\x03\x04 a zip file")
    with pytest.raises(DamagedBackup, match="truncated"):
        unseal(seal(b"data")[: HEADER_SIZE - 1])


@pytest.mark.parametrize("field, value", [(3, 18), (4, 9), (5, 2), (3, 20)])
def test_kdf_cost_beyond_what_sigdesk_writes_is_refused_before_deriving(field, value):
    blob = bytearray(seal(b"data"))
    blob[len(MAGIC) + field] = value
    if field != 3:
        blob[len(MAGIC) + 3] = 17
    started = time.monotonic()
    with pytest.raises(DamagedBackup, match="beyond what SigDesk writes"):
        unseal(bytes(blob))
    assert time.monotonic() - started < 0.2


def test_impossible_kdf_cost_in_header_is_refused_before_deriving():
    blob = bytearray(seal(b"data"))
    blob[len(MAGIC) + 3] = 60  # log2(n)
    with pytest.raises(DamagedBackup, match="key-derivation"):
        unseal(bytes(blob))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=8))
def test_writes_of_any_size_seal_the_same_chunks_and_read_back_whole(sizes):
    data = os.urandom(sum(sizes))
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, "pass phrase", FAST, chunk_size=CHUNK)
    at = 0
    for size in sizes:
        writer.write(memoryview(data)[at : at + size])
        at += size
    writer.close()
    blob = sink.getvalue()
    assert len(blob) == HEADER_SIZE + len(data) + 16 * max(1, -(-len(data) // CHUNK))
    reader = DecryptingReader(io.BytesIO(blob), "pass phrase")
    assert b"".join(reader.chunks()) == data


def test_key_derived_ahead_of_time_seals_a_readable_backup():
    sealed = sealing_key("pass phrase", FAST, CHUNK)
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, sealed)
    writer.write(b"made while the snapshot was taken" * 100)
    writer.close()
    assert unseal(sink.getvalue()) == b"made while the snapshot was taken" * 100
