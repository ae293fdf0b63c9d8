"""Prints the .deb Depends line for a bundle: the Debian packages owning the system libraries that
the bundle's binaries link to but do not carry (found with ldd and dpkg -S on the build machine)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ALWAYS = ["libc6"]


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def outside_libraries(root: Path) -> tuple[set[str], set[str]]:
    """(resolved paths outside the bundle, names ldd could not find anywhere)."""
    env = dict(os.environ, LD_LIBRARY_PATH=f"{root / '_internal'}:{root / '_internal/PySide6/Qt/lib'}")
    outside, missing = set(), set()
    for path in elf_files(root):
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env, check=False)
        for line in result.stdout.splitlines():
            if "=> not found" in line:
                missing.add(line.split()[0])
                continue
            match = re.search(r"=> (/\S+)", line)
            if match and not Path(match.group(1)).resolve().is_relative_to(root.resolve()):
                outside.add(match.group(1))
    return outside, missing


def owning_packages(paths: set[str]) -> set[str]:
    packages = set()
    for path in sorted(paths):
        candidates = {path, str(Path(path).resolve())}
        candidates |= {candidate.replace("/usr/lib/", "/lib/", 1) for candidate in list(candidates)}
        candidates |= {
            candidate.replace("/lib/", "/usr/lib/", 1)
            for candidate in list(candidates)
            if candidate.startswith("/lib/")
        }
        for candidate in candidates:
            result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
            if result.returncode == 0:
                packages.add(result.stdout.split(":", 1)[0].strip())
                break
        else:
            print(f"system_deps: no package owns {path}", file=sys.stderr)
    return packages


def glibc_version() -> str:
    version = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "libc6"], capture_output=True, text=True, check=True
    ).stdout
    return version.split("-", 1)[0]


def main(root: str) -> None:
    outside, missing = outside_libraries(Path(root))
    if missing:
        # optional plugins (e.g. Wayland EGL) whose libraries this machine lacks; they simply do not load
        print(
            f"system_deps: not found on this machine (optional plugins): {', '.join(sorted(missing))}", file=sys.stderr
        )
    packages = sorted(owning_packages(outside) - set(ALWAYS))
    print(", ".join([f"libc6 (>= {glibc_version()})"] + packages))


if __name__ == "__main__":
    main(sys.argv[1])
