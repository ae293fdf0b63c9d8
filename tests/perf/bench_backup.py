"""Backup and restore throughput against raw AES-256-GCM over the same bytes, in the same run.

Run from the project root:

    .venv/bin/python tests/perf/bench_backup.py                 # ~1 GB: half database, half media
    .venv/bin/python tests/perf/bench_backup.py --size-mb 300   # smaller

1. Builds a data dir in a temp folder: SigDesk's schema (migrations) and data key, then messages
   (~1 KB of text and Meta JSON each) until the SQLite file holds half the size, and random media
   files for the other half.
2. Raw, 1 MiB pieces: encrypt = read the database file and every media file and seal them (nothing
   written); decrypt = read those sealed bytes back from a file and open them (nothing written).
   Also encrypt + write + fsync, the floor for anything that must leave a durable file behind.
3. Backup: sigdesk.backup.services.create with the production scrypt cost (n=2**17), verify, and
   restore into a new data dir. Throughput = source bytes (database file + media) / seconds.
   os.sync() before each timed step, so none pays for the previous one's writeback.

The ratio is backup (or restore) throughput / raw AES-GCM throughput. Readable lines go to stdout;
the last line is the same numbers as JSON, with the load average, because other work on the machine
moves these figures a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.db import Database, upgrade_to_head  # noqa: E402
from sigdesk.settings.services import open_cipher  # noqa: E402
from sigdesk.backup import services as backups  # noqa: E402
from sigdesk.config import Config  # noqa: E402
from sigdesk.whatsapp.media import store_media  # noqa: E402

MiB = 1024 * 1024
PASSPHRASE = "benchmark passphrase"
WORDS = "hello order delivery tomorrow thanks price invoice address please when ready pickup".split()


def build(data_dir: Path, size_mb: int) -> tuple[int, int, int]:
    config = Config(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sigdesk.db'}", testing=True)
    config.ensure_data_dir()
    database = Database(config.database_url)
    upgrade_to_head(database, config.migrations_dir)
    with database.session() as session:
        open_cipher(session, config.data_key_file)  # makes data.key, as the first start does
    database.dispose()
    db_target = size_mb * MiB // 2
    rng = random.Random(7)
    connection = sqlite3.connect(data_dir / "sigdesk.db")
    connection.execute("PRAGMA journal_mode=WAL")
    contacts = 2000
    connection.executemany(
        "INSERT INTO contacts (id, wa_id, profile_name, opted_out_marketing, created_at) VALUES (?, ?, ?, 0, '2026-01-01 00:00:00.000000')",
        [(n, f"4477009{n:05d}", f"Customer {n}") for n in range(1, contacts + 1)],
    )
    connection.executemany(
        "INSERT INTO conversations (id, contact_id, status, unread_count, created_at) VALUES (?, ?, 'open', 0, '2026-01-01 00:00:00.000000')",
        [(n, n) for n in range(1, contacts + 1)],
    )
    rows = 0
    while True:
        batch = []
        for _ in range(5000):
            rows += 1
            contact = rng.randint(1, contacts)
            body = " ".join(rng.choices(WORDS, k=90))
            raw = json.dumps(
                {"id": f"wamid.{rows}", "from": f"4477009{contact:05d}", "type": "text", "text": {"body": body}}
            )
            stamp = f"2026-{1 + rows % 12:02d}-{1 + rows % 28:02d} {rows % 24:02d}:{rows % 60:02d}:{rows % 59:02d}.{rows % 999999:06d}"
            batch.append((f"wamid.{rows}", contact, contact, "in" if rows % 2 else "out", body, raw, stamp, stamp))
        connection.executemany(
            "INSERT INTO messages (wamid, conversation_id, contact_id, direction, type, text, raw, timestamp, created_at,"
            " forwarded, frequently_forwarded, attempts) VALUES (?, ?, ?, ?, 'text', ?, ?, ?, ?, 0, 0, 0)",
            batch,
        )
        connection.commit()
        size = os.path.getsize(data_dir / "sigdesk.db") + os.path.getsize(data_dir / "sigdesk.db-wal")
        if size >= db_target:
            break
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    media_target = size_mb * MiB - db_target
    media = 0
    while media < media_target:
        data = os.urandom(min(rng.randint(50_000, 4 * MiB), media_target - media + 1))
        store_media(data_dir, data)
        media += len(data)
    return rows, os.path.getsize(data_dir / "sigdesk.db"), media


def source_files(data_dir: Path) -> list[Path]:
    return [data_dir / "sigdesk.db", *sorted(p for p in (data_dir / "media").rglob("*") if p.is_file())]


def raw_aes(files: list[Path], sealed_path: Path) -> tuple[float, float, float]:
    """(encrypt s, decrypt s, encrypt-and-write s) for AES-256-GCM over the same bytes, 1 MiB pieces.

    encrypt: read every source file and seal it (nothing written). decrypt: read those sealed bytes back
    from a file and open them (nothing written). encrypt-and-write also writes and fsyncs the sealed file:
    the floor for any backup that has to leave a durable file behind."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    os.sync()
    start = time.perf_counter()
    for path in files:
        with open(path, "rb") as handle:
            while block := handle.read(MiB):
                aead.encrypt(nonce, block, None)
    encrypt = time.perf_counter() - start
    os.sync()
    start = time.perf_counter()
    with open(sealed_path, "wb") as out:
        for path in files:
            with open(path, "rb") as handle:
                while block := handle.read(MiB):
                    out.write(aead.encrypt(nonce, block, None))
        out.flush()
        os.fsync(out.fileno())
    encrypt_write = time.perf_counter() - start
    os.sync()
    start = time.perf_counter()
    with open(sealed_path, "rb") as handle:
        while block := handle.read(MiB + 16):
            try:
                aead.decrypt(nonce, block, None)
            except InvalidTag:
                pass  # pieces that straddle two files do not open; the cost is the same
    decrypt = time.perf_counter() - start
    sealed_path.unlink()
    return encrypt, decrypt, encrypt_write


def kdf_seconds() -> float:
    from sigdesk.backup.format import KdfParams, derive

    start = time.perf_counter()
    derive(PASSPHRASE, os.urandom(16), KdfParams())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder.")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="sigdesk-bench-backup-"))
    data_dir = work / "data"
    started = time.perf_counter()
    rows, db_bytes, media_bytes = build(data_dir, args.size_mb)
    source = db_bytes + media_bytes
    print(
        f"built {source / MiB:.0f} MiB: database {db_bytes / MiB:.0f} MiB ({rows} messages), media {media_bytes / MiB:.0f} MiB "
        f"in {time.perf_counter() - started:.0f} s"
    )

    enc_s, dec_s, enc_write_s = raw_aes(source_files(data_dir), work / "raw.sealed")
    kdf_s = kdf_seconds()
    config = Config(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sigdesk.db'}")
    database = Database(config.database_url)
    out = work / "bench.sigdesk-backup"
    phases: dict[str, float] = {}

    def mark(phase: str, _done: int, _total: int) -> None:
        phases.setdefault(phase, time.perf_counter())

    os.sync()
    start = time.perf_counter()
    manifest = backups.create(database, config, PASSPHRASE, out, progress=mark)
    backup_s = time.perf_counter() - start
    dump_s = phases["backup"] - phases["snapshot"]
    database.dispose()
    os.sync()
    start = time.perf_counter()
    backups.verify(out, PASSPHRASE)
    verify_s = time.perf_counter() - start
    phases.clear()
    os.sync()
    start = time.perf_counter()
    backups.restore(out, PASSPHRASE, work / "restored", progress=mark)
    restore_s = time.perf_counter() - start
    load_s = start + restore_s - phases["load"]
    restored_rows = manifest["tables"]["messages"]["rows"]

    def rate(seconds: float) -> float:
        return source / MiB / seconds

    result = {
        "source_mib": round(source / MiB),
        "database_mib": round(db_bytes / MiB),
        "media_mib": round(media_bytes / MiB),
        "messages": restored_rows,
        "backup_file_mib": round(out.stat().st_size / MiB),
        "database_stored_as": manifest.get("database"),
        "raw_aes_encrypt_mib_s": round(rate(enc_s)),
        "raw_aes_decrypt_mib_s": round(rate(dec_s)),
        "raw_aes_encrypt_write_fsync_mib_s": round(rate(enc_write_s)),
        "scrypt_s": round(kdf_s, 2),
        "backup_s": round(backup_s, 2),
        "backup_snapshot_s": round(dump_s, 2),
        "backup_mib_s": round(rate(backup_s), 1),
        "verify_s": round(verify_s, 2),
        "verify_mib_s": round(rate(verify_s), 1),
        "restore_s": round(restore_s, 2),
        "restore_after_decrypt_s": round(load_s, 2),
        "restore_mib_s": round(rate(restore_s), 1),
        "backup_ratio": round(enc_s / backup_s, 3),
        "restore_ratio": round(dec_s / restore_s, 3),
        "backup_ratio_to_encrypt_write_fsync": round(enc_write_s / backup_s, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    print(
        f"raw AES-GCM: encrypt {result['raw_aes_encrypt_mib_s']} MiB/s (reading the files), "
        f"decrypt {result['raw_aes_decrypt_mib_s']} MiB/s (reading the sealed file); "
        f"encrypt + write + fsync {result['raw_aes_encrypt_write_fsync_mib_s']} MiB/s; scrypt (n=2**17) {kdf_s:.2f} s"
    )
    print(
        f"backup : {backup_s:.2f} s, {result['backup_mib_s']} MiB/s, ratio to raw {result['backup_ratio']} "
        f"(to encrypt + write + fsync {result['backup_ratio_to_encrypt_write_fsync']}); "
        f"snapshot beside scrypt {dump_s:.2f} s, then streaming {backup_s - dump_s:.2f} s"
    )
    print(f"verify : {verify_s:.2f} s, {result['verify_mib_s']} MiB/s")
    print(
        f"restore: {restore_s:.2f} s, {result['restore_mib_s']} MiB/s, ratio to raw {result['restore_ratio']} "
        f"(scrypt + decrypting and writing {restore_s - load_s:.2f} s; checks, migrations, data key {load_s:.2f} s)"
    )
    print(f"peak RSS {result['peak_rss_mib']} MiB")
    print(json.dumps(result))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
