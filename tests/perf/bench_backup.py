"""Backup and restore throughput against raw AES-256-GCM over the same bytes, in the same run.

Run from the project root:

    .venv/bin/python tests/perf/bench_backup.py                 # ~1 GB: half database, half media
    .venv/bin/python tests/perf/bench_backup.py --size-mb 300   # smaller

1. Builds a data dir in a temp folder: SigDesk's schema (create_app), then messages (~1 KB of text and
   Meta JSON each) until the SQLite file holds half the size, and random media files for the other half.
2. Raw: reads the database file and every media file in 1 MiB pieces and seals each with AES-256-GCM
   (what the backup cannot beat: same bytes, same cipher, no tar, no dump); then opens them again.
3. Backup: sigdesk.backup.services.create with the production scrypt cost (n=2**17, ~0.4 s of it),
   verify, and restore into a new data dir. Throughput = source bytes (database file + media) / seconds.

The ratio is backup (or restore) throughput / raw AES-GCM throughput. Readable lines go to stdout;
the last line is the same numbers as JSON.
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

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigdesk.app import create_app  # noqa: E402
from sigdesk.backup import services as backups  # noqa: E402
from sigdesk.config import Config  # noqa: E402
from sigdesk.whatsapp.media import store_media  # noqa: E402

MiB = 1024 * 1024
PASSPHRASE = "benchmark passphrase"
WORDS = "hello order delivery tomorrow thanks price invoice address please when ready pickup".split()


def build(data_dir: Path, size_mb: int) -> tuple[int, int, int]:
    config = Config(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sigdesk.db'}", testing=True)
    app = create_app(config)
    app.extensions["sigdesk"].database.dispose()
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
            raw = json.dumps({"id": f"wamid.{rows}", "from": f"4477009{contact:05d}", "type": "text", "text": {"body": body}})
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


def raw_aes(files: list[Path]) -> tuple[float, float]:
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    sealed_sizes = 0
    start = time.perf_counter()
    sealed = []
    for path in files:
        with open(path, "rb") as handle:
            while block := handle.read(MiB):
                nonce = os.urandom(12)
                ciphertext = aead.encrypt(nonce, block, None)
                sealed_sizes += len(ciphertext)
                if len(sealed) < 64:
                    sealed.append((nonce, ciphertext))
    encrypt = time.perf_counter() - start
    # Decrypt cost per byte, measured on a sample repeated to cover the same volume.
    total = sum(len(c) for _n, c in sealed)
    rounds = max(1, sealed_sizes // max(total, 1))
    start = time.perf_counter()
    for _ in range(rounds):
        for nonce, ciphertext in sealed:
            aead.decrypt(nonce, ciphertext, None)
    decrypt = (time.perf_counter() - start) * sealed_sizes / max(total * rounds, 1)
    return encrypt, decrypt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sigdesk-bench-backup-"))
    data_dir = work / "data"
    started = time.perf_counter()
    rows, db_bytes, media_bytes = build(data_dir, args.size_mb)
    source = db_bytes + media_bytes
    print(f"built {source / MiB:.0f} MiB: database {db_bytes / MiB:.0f} MiB ({rows} messages), media {media_bytes / MiB:.0f} MiB "
          f"in {time.perf_counter() - started:.0f} s")

    enc_s, dec_s = raw_aes(source_files(data_dir))
    config = Config(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sigdesk.db'}")
    from sigdesk.db import Database

    database = Database(config.database_url)
    out = work / "bench.sigdesk-backup"
    phases: dict[str, float] = {}

    def mark(phase: str, _done: int, _total: int) -> None:
        phases.setdefault(phase, time.perf_counter())

    start = time.perf_counter()
    manifest = backups.create(database, config, PASSPHRASE, out, progress=mark)
    backup_s = time.perf_counter() - start
    dump_s = phases["backup"] - phases["snapshot"]
    database.dispose()
    start = time.perf_counter()
    backups.verify(out, PASSPHRASE)
    verify_s = time.perf_counter() - start
    phases.clear()
    start = time.perf_counter()
    backups.restore(out, PASSPHRASE, work / "restored", progress=mark)
    restore_s = time.perf_counter() - start
    load_s = start + restore_s - phases["load"]
    restored_rows = manifest["tables"]["messages"]["rows"]

    def rate(seconds: float) -> float:
        return source / MiB / seconds

    result = {
        "source_mib": round(source / MiB), "database_mib": round(db_bytes / MiB), "media_mib": round(media_bytes / MiB),
        "messages": restored_rows, "backup_file_mib": round(out.stat().st_size / MiB),
        "raw_aes_encrypt_mib_s": round(rate(enc_s)), "raw_aes_decrypt_mib_s": round(rate(dec_s)),
        "backup_s": round(backup_s, 2), "backup_dump_s": round(dump_s, 2), "restore_load_s": round(load_s, 2), "backup_mib_s": round(rate(backup_s), 1),
        "verify_s": round(verify_s, 2), "verify_mib_s": round(rate(verify_s), 1),
        "restore_s": round(restore_s, 2), "restore_mib_s": round(rate(restore_s), 1),
        "backup_ratio": round(enc_s / backup_s, 3), "restore_ratio": round(dec_s / restore_s, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    print(f"raw AES-GCM: encrypt {result['raw_aes_encrypt_mib_s']} MiB/s (incl. reading the files), decrypt {result['raw_aes_decrypt_mib_s']} MiB/s")
    print(f"backup : {backup_s:.1f} s, {result['backup_mib_s']} MiB/s, ratio to raw {result['backup_ratio']} "
          f"(snapshot + logical dump {dump_s:.1f} s; encrypting {backup_s - dump_s:.1f} s incl. ~0.4 s scrypt)")
    print(f"verify : {verify_s:.1f} s, {result['verify_mib_s']} MiB/s")
    print(f"restore: {restore_s:.1f} s, {result['restore_mib_s']} MiB/s, ratio to raw {result['restore_ratio']} "
          f"(loading rows {load_s:.1f} s; decrypting and extracting {restore_s - load_s:.1f} s)")
    print(f"peak RSS {result['peak_rss_mib']} MiB")
    print(json.dumps(result))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
