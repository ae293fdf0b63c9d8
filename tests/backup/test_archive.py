"""The tar stream inside a backup: what goes in comes out with its checksum, and it is a real tar."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from sigdesk.backup.archive import INLINE_HASH, ArchiveWriter, Pipeline, Pipelined, entries
from sigdesk.backup.format import DamagedBackup

SIZES = {"empty": 0, "one": 1, "block": 512, "block-plus": 513, "inline": INLINE_HASH, "big": INLINE_HASH * 5 + 7}


def build(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with ThreadPoolExecutor(1) as helper, ThreadPoolExecutor(1) as writes:
        sink = Pipelined(out, Pipeline(writes))
        archive = ArchiveWriter(sink, Pipeline(helper))
        futures = {
            name: archive.add_file(name, io.BytesIO(data), len(data), lambda _n: None) for name, data in files.items()
        }
        archive.close()
        sink.flush()
        digests = {name: future.result() for name, future in futures.items()}
    assert digests == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return out.getvalue()


def chunked(blob: bytes, size: int = 1000):
    return iter([blob[at : at + size] for at in range(0, len(blob), size)])


def test_members_of_every_size_come_back_with_their_checksums():
    files = {f"media/{name}": os.urandom(size) for name, size in SIZES.items()}
    blob = build(files)
    seen = {}
    with ThreadPoolExecutor(1) as helper:
        for entry in entries(chunked(blob), lambda info: info.name):
            out = io.BytesIO()
            digest, _lines = entry.copy_to(out, Pipeline(helper)).result()
            seen[entry.name] = (out.getvalue(), digest)
    assert seen == {name: (data, hashlib.sha256(data).hexdigest()) for name, data in files.items()}


def test_the_stream_is_a_plain_tar_that_standard_tools_read():
    files = {"data.key": b"k" * 45, "media/ab/cd/" + "e" * 64: os.urandom(3000)}
    with tarfile.open(fileobj=io.BytesIO(build(files)), mode="r:") as tar:
        assert {member.name: tar.extractfile(member).read() for member in tar} == files


def test_a_stream_that_ends_inside_a_member_is_incomplete():
    blob = build({"media/x": os.urandom(5000)})
    with ThreadPoolExecutor(1) as helper, pytest.raises(DamagedBackup, match="incomplete"):
        for entry in entries(chunked(blob[:3000]), lambda info: info.name):
            entry.copy_to(None, Pipeline(helper))


def test_links_and_folders_are_not_accepted():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        link = tarfile.TarInfo("media/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DamagedBackup, match="unexpected entry"):
        list(entries(chunked(out.getvalue()), lambda info: info.name))
