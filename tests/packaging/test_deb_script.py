"""packaging/test-deb.sh sets up what it needs itself, so it runs in a fresh clone (no .venv yet).
Creating the .venv installs SigDesk with its test and packaging extras (minutes), so this runs only
with SIGDESK_PACKAGING_TESTS=1, like the .deb test itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENABLE_ENV = "SIGDESK_PACKAGING_TESTS"


def _unavailable() -> str | None:
    if os.environ.get(ENABLE_ENV) != "1":
        return f"creates a .venv with every extra (minutes): set {ENABLE_ENV}=1"
    if os.geteuid() != 0 or not shutil.which("dpkg-deb"):
        return "test-deb.sh needs root on Debian/Ubuntu"
    if not (ROOT / ".git").exists():
        return "needs the git checkout to copy"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=_unavailable() or "")


def _fresh_clone(target: Path) -> None:
    """The files a clone of this tree would have (tracked ones and new ones not ignored): no .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_test_deb_sh_makes_its_own_venv_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    _fresh_clone(clone)
    assert not (clone / ".venv").exists()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SIGDESK_", "VIRTUAL_ENV"))}
    env["PYTHON"] = sys.executable if sys.prefix == sys.base_prefix else str(Path(sys.base_prefix) / "bin/python3")
    # --collect-only: everything the .deb test needs is there, without the build (covered by test_deb.py)
    result = subprocess.run(
        ["bash", "packaging/test-deb.sh", "--collect-only"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "test_installed_package_serves" in result.stdout
    assert (clone / ".venv/bin/python").exists()
