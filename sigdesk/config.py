"""The one config object, and where SigDesk finds its data and its bundled resources."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "SigDesk"
DATA_DIR_ENV = "SIGDESK_DATA_DIR"
DATABASE_URL_ENV = "SIGDESK_DATABASE_URL"


class ConfigError(Exception):
    """A setting the user controls is wrong; the message says which and how to fix it."""


def resource_root() -> Path:
    """Where ui/ and migrations/ live: the PyInstaller bundle when frozen, else the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass
class Config:
    data_dir: Path
    database_url: str
    secret_key_file: Path = field(init=False)
    data_key_file: Path = field(init=False)
    bcrypt_rounds: int = 12
    max_body_bytes: int = 16 * 1024 * 1024
    login_rate_limit: str = "10 per minute"
    https: bool = False
    testing: bool = False

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.secret_key_file = self.data_dir / "session.key"
        self.data_key_file = self.data_dir / "data.key"

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, database_url: str | None = None, **overrides) -> "Config":
        """Command-line values win over environment variables, which win over defaults."""
        directory = Path(data_dir or os.environ.get(DATA_DIR_ENV) or default_data_dir()).expanduser()
        url = database_url or os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{directory / 'sigdesk.db'}"
        return cls(data_dir=directory, database_url=url, **overrides)

    @property
    def templates_dir(self) -> Path:
        return resource_root() / "ui" / "templates"

    @property
    def static_dir(self) -> Path:
        return resource_root() / "ui" / "static"

    @property
    def migrations_dir(self) -> Path:
        return resource_root() / "migrations"

    def ensure_data_dir(self) -> None:
        """Fail early, with the path in the message, when the data dir cannot be used."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"Cannot create the data directory {self.data_dir}: {exc.strerror}") from exc
        probe = self.data_dir / ".write-test"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"The data directory {self.data_dir} is not writable: {exc.strerror}") from exc
