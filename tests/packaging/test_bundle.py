"""Cheap checks of the packaging recipe (no PyInstaller run): what the bundle carries, what pruning
drops, and that resources resolve both from the source tree and from a bundle."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from sigdesk.config import Config, resource_root

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


@pytest.fixture(scope="module")
def bundle():
    spec = importlib.util.spec_from_file_location("sigdesk_packaging_bundle", PACKAGING / "bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundle_carries_every_template_static_file_and_migration(bundle):
    pairs = bundle.data_files()
    targets = {Path(target) / Path(source).name for source, target in pairs}
    assert all(Path(source).is_file() for source, _ in pairs)
    assert Path("ui/templates/base.html") in targets
    assert Path("ui/templates/onboarding/welcome.html") in targets
    assert Path("ui/static/css/app.css") in targets
    assert Path("migrations/env.py") in targets
    versions = {path.name for path in (ROOT / "migrations/versions").glob("*.py")}
    assert versions <= {path.name for path in targets if path.parent == Path("migrations/versions")}
    assert not any("__pycache__" in source for source, _ in pairs)


def test_resources_resolve_from_the_source_tree():
    assert resource_root() == ROOT
    config = Config(data_dir=Path("/nonexistent"), database_url="sqlite://")
    assert (config.templates_dir / "base.html").is_file()
    assert (config.static_dir / "css/app.css").is_file()
    assert (config.migrations_dir / "env.py").is_file()


def test_resources_resolve_from_a_pyinstaller_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    config = Config(data_dir=tmp_path / "data", database_url="sqlite://")
    assert resource_root() == tmp_path
    assert config.templates_dir == tmp_path / "ui/templates"
    assert config.migrations_dir == tmp_path / "migrations"


def test_the_data_dir_is_the_per_user_one_never_the_install_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SIGDESK_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "opt"), raising=False)
    assert Config.from_env().data_dir == tmp_path / "share/SigDesk"


@pytest.mark.parametrize(
    "path",
    [
        "PySide6/Qt/translations/qt_de.qm",
        "PySide6/Qt/translations/qtwebengine_locales/de.pak",
        "PySide6/Qt/qml/QtQuick/Controls/libqtquickcontrols2plugin.so",
        "PySide6/Qt/resources/qtwebengine_devtools_resources.pak",
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "PySide6/Qt/plugins/platforms/libqvnc.so",
    ],
)
def test_pruning_drops_what_the_window_never_loads(bundle, path):
    assert bundle.is_pruned(path)


@pytest.mark.parametrize(
    "path",
    [
        "PySide6/Qt/translations/qtwebengine_locales/en-US.pak",
        "PySide6/Qt/resources/qtwebengine_resources.pak",
        "PySide6/Qt/resources/icudtl.dat",
        "PySide6/Qt/libexec/QtWebEngineProcess",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/lib/libQt6WebEngineCore.so.6",
        "ui/templates/base.html",
        "migrations/env.py",
    ],
)
def test_pruning_keeps_what_the_window_needs(bundle, path):
    assert not bundle.is_pruned(path)


def test_libraries_nothing_links_to_are_dropped_with_their_symlinks(bundle):
    binaries = [
        ("PySide6/QtWebEngineWidgets.abi3.so", "/src/QtWebEngineWidgets.abi3.so", "EXTENSION"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/src/libqxcb.so", "BINARY"),
        ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", "/src/libQt6WebEngineCore.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", "/src/libQt6XcbQpa.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt63DCore.so.6", "/src/libQt63DCore.so.6", "BINARY"),
        ("PySide6/Qt/qml/Qt3D/libquick3dcoreplugin.so", "/src/libquick3dcoreplugin.so", "BINARY"),
        ("libQt63DCore.so.6", "PySide6/Qt/lib/libQt63DCore.so.6", "SYMLINK"),
        ("libQt6XcbQpa.so.6", "PySide6/Qt/lib/libQt6XcbQpa.so.6", "SYMLINK"),
        ("libnssckbi.so", "/src/libnssckbi.so", "BINARY"),
    ]
    needs = {
        "/src/QtWebEngineWidgets.abi3.so": ["libQt6WebEngineCore.so.6"],
        "/src/libqxcb.so": ["libQt6XcbQpa.so.6"],
        "/src/libquick3dcoreplugin.so": ["libQt63DCore.so.6"],
    }
    kept, datas = bundle.prune(
        binaries, [("ui/templates/base.html", "/src/base.html", "DATA")], lambda path: needs.get(path, [])
    )
    names = [entry[0] for entry in kept]
    assert names == [
        "PySide6/QtWebEngineWidgets.abi3.so",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/lib/libQt6WebEngineCore.so.6",
        "PySide6/Qt/lib/libQt6XcbQpa.so.6",
        "libQt6XcbQpa.so.6",
        "libnssckbi.so",
    ]
    assert datas == [("ui/templates/base.html", "/src/base.html", "DATA")]


def test_the_hidden_imports_exist(bundle):
    for name in bundle.hidden_imports("linux"):
        assert importlib.util.find_spec(name) is not None, name


def test_every_folder_of_code_is_a_package_the_installers_find():
    """setuptools (setup.cfg's packages.find) and PyInstaller's collect_submodules("sigdesk") skip a folder
    without __init__.py: the installed .deb then stopped at start with "No module named 'sigdesk.sales.feature'"."""
    from setuptools import find_packages

    found = set(find_packages(str(ROOT), include=["sigdesk", "sigdesk.*"]))
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "sigdesk").rglob("*.py")
        if "__pycache__" not in path.parts and "migrations" not in path.parts  # Alembic's are data files
    }
    assert folders - found == set()


def test_every_countrys_numbering_plan_is_bundled(bundle):
    """phonenumbers imports a country's plan by a computed name on first use; a frozen build without it
    would refuse every number of that country."""
    import phonenumbers

    names = set(bundle.hidden_imports("win32"))
    assert {f"phonenumbers.data.region_{region}" for region in ("DE", "US", "BR", "IN")} <= names
    assert len([name for name in names if name.startswith("phonenumbers.data.region_")]) >= len(
        [region for region in phonenumbers.SUPPORTED_REGIONS if region.isalpha()]
    )


def test_the_desktop_entry_starts_the_window_with_the_icon():
    entry = (PACKAGING / "linux/sigdesk.desktop").read_text().splitlines()
    assert entry[0] == "[Desktop Entry]"
    assert {"Type=Application", "Name=SigDesk", "Exec=sigdesk desktop", "Icon=sigdesk", "Terminal=false"} <= set(entry)


def test_installer_scripts_are_executable_and_icons_are_present():
    for script in (
        "build.sh",
        "test-deb.sh",
        "linux/build-deb.sh",
        "linux/build-tarball.sh",
        "linux/install.sh",
        "linux/postinst",
        "linux/postrm",
        "linux/sigdesk-wrapper.sh",
        "macos/build-dmg.sh",
    ):
        assert os.access(PACKAGING / script, os.X_OK), script
    assert (PACKAGING / "icons/sigdesk.png").read_bytes()[:4] == b"\x89PNG"
    assert (PACKAGING / "icons/sigdesk.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"
    assert (PACKAGING / "icons/sigdesk.icns").read_bytes()[:4] == b"icns"
    assert "SigDesk.exe" in (PACKAGING / "windows/sigdesk.iss").read_text()


def test_the_frozen_entry_point_becomes_the_broadcasts_sending_process_when_asked():
    """Frozen, sys.executable is SigDesk itself: the engine starts its sending process as
    `sigdesk --broadcast-sender` (sigdesk.broadcasts.sender.command)."""
    import subprocess

    from sigdesk.broadcasts.sender import FLAG

    done = subprocess.run(
        [sys.executable, str(PACKAGING / "sigdesk_main.py"), FLAG],
        input=b'{"threads": 2}\n',
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [b'{"ready": true}']
