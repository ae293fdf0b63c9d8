"""What goes into the PyInstaller bundle and what is pruned from it, kept apart from the spec so
that tests can check it without running PyInstaller."""

from __future__ import annotations

import fnmatch
import importlib
import os
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (source folder in the repository, folder inside the bundle): sigdesk.config.resource_root() finds
# both under sys._MEIPASS when frozen, and under the repository root from source.
DATA_FOLDERS = (
    ("ui", "ui"),
    ("migrations", "migrations"),
    ("sigdesk/relay/migrations", "sigdesk/relay/migrations"),  # found beside sigdesk/relay/schema.py
)

# Loaded by name at run time, so PyInstaller cannot see them being imported.
HIDDEN_IMPORTS = [
    "logging.config",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.mysql.pymysql",
    "pymysql",
    "alembic.runtime.migration",
    "alembic.ddl.sqlite",
    "alembic.ddl.mysql",
    "spectree.plugins.flask_plugin",  # spectree loads its Flask backend by name
    "spectree.model_adapter.pydantic_adapter",  # and its model adapter
]
# Packages whose modules are imported by a computed name: phonenumbers loads each country's numbering
# plan (phonenumbers.data.region_DE, ...) the first time a number of that country is parsed.
DYNAMIC_PACKAGES = ("phonenumbers.data",)
PLATFORM_HIDDEN_IMPORTS = {
    "linux": [
        "webview.platforms.qt",
        "qtpy",
        "qtpy.QtWebEngineWidgets",
        "qtpy.QtWebEngineCore",
        "qtpy.QtWebChannel",
        "qtpy.QtNetwork",
        "PySide6.QtWebEngineWidgets",
        "PySide6.QtWebChannel",
    ],
    "win32": ["webview.platforms.edgechromium", "webview.platforms.winforms", "clr"],
    "darwin": ["webview.platforms.cocoa"],
}

# Never imported by SigDesk; keeps PyInstaller from following optional imports into them.
EXCLUDES = [
    "tkinter",
    "_tkinter",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "IPython",
    "pytest",
    "hypothesis",
    "playwright",
    "webview.platforms.gtk",
    "webview.platforms.android",
    "webview.platforms.cef",
    "webview.platforms.mshtml",
    "gi",
    "PySide6.Qt3DCore",
    "PySide6.QtCharts",
    "PySide6.QtDataVisualization",
    "PySide6.QtGraphs",
    "PySide6.QtMultimedia",
    "PySide6.QtMultimediaWidgets",
    "PySide6.QtPdf",
    "PySide6.QtPdfWidgets",
    "PySide6.QtQuick3D",
    "PySide6.QtQuickControls2",
    "PySide6.QtQuickWidgets",
    "PySide6.QtWebEngineQuick",
    "PySide6.QtSql",
    "PySide6.QtTest",
    "PySide6.QtDesigner",
    "PySide6.QtUiTools",
    "PySide6.QtHelp",
    "PySide6.QtBluetooth",
    "PySide6.QtNfc",
    "PySide6.QtSensors",
    "PySide6.QtSerialPort",
    "PySide6.QtSerialBus",
    "PySide6.QtTextToSpeech",
    "PySide6.QtSpatialAudio",
    "PySide6.QtLocation",
    "PySide6.QtRemoteObjects",
    "PySide6.QtScxml",
    "PySide6.QtStateMachine",
    "PySide6.QtHttpServer",
    "PySide6.QtNetworkAuth",
    "PySide6.QtSvgWidgets",
    "PySide6.QtAxContainer",
    "PySide6.QtConcurrent",
    "PySide6.QtXml",
]

# Pruned from the Linux bundle (patterns on the path inside the bundle). The window needs Qt Core,
# Gui, Widgets, Network, WebChannel and WebEngine (which links Quick and Qml), the xcb and Wayland
# platform plugins and the en-US WebEngine locale. Qt libraries nothing links to any more are dropped
# afterwards by unreachable_libraries().
PRUNE_PATTERNS = [
    "PySide6/Qt/translations/*",  # Qt's UI translations and Chromium's locales...
    "PySide6/Qt/qml/*",  # QML modules: the window uses widgets, not QML
    "PySide6/Qt/resources/qtwebengine_devtools_resources*.pak",  # the web inspector's UI
    "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/plugins/generic/*",  # evdev/tslib input for framebuffer kiosks
    "PySide6/Qt/plugins/position/*",
    "PySide6/Qt/plugins/qmltooling/*",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",  # GTK look for Qt dialogs: pulls all of GTK 3
    "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqminimal.so",
    "PySide6/Qt/plugins/platforms/libqminimalegl.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/tls/libqcertonlybackend.so",
]
KEEP_PATTERNS = [
    "PySide6/Qt/translations/qtwebengine_locales/en-US.pak",  # ...but Chromium needs one locale
]
# Loaded with dlopen(), so no other binary names them: never dropped as unreachable.
DLOPENED = (
    "libpython*",
    "libnss*",
    "libsoftokn3*",
    "libfreebl*",
    "libsmime3*",
    "libnspr4*",
    "libplc4*",
    "libplds4*",
    "libxcb-cursor*",
    "libEGL*",
    "libGL*",
    "libvulkan*",
)


def data_files() -> list[tuple[str, str]]:
    """(source, destination folder) pairs in the form PyInstaller's Analysis(datas=...) takes."""
    pairs = []
    for source, target in DATA_FOLDERS:
        for path in sorted((ROOT / source).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                pairs.append((str(path), str(Path(target) / path.parent.relative_to(ROOT / source))))
    return pairs


def hidden_imports(platform: str = sys.platform) -> list[str]:
    key = "linux" if platform.startswith("linux") else platform
    return HIDDEN_IMPORTS + PLATFORM_HIDDEN_IMPORTS.get(key, []) + dynamic_imports()


def dynamic_imports() -> list[str]:
    """Every module of DYNAMIC_PACKAGES (what PyInstaller's collect_submodules gives, without PyInstaller)."""
    names = []
    for package in DYNAMIC_PACKAGES:
        path = importlib.import_module(package).__path__
        names.append(package)
        names.extend(sorted(f"{package}.{module.name}" for module in pkgutil.iter_modules(path)))
    return names


def is_pruned(name: str) -> bool:
    """Whether a file at this path inside the bundle is left out of the pruned Linux build."""
    name = name.replace("\\", "/")
    if any(fnmatch.fnmatch(name, pattern) for pattern in KEEP_PATTERNS):
        return False
    return any(fnmatch.fnmatch(name, pattern) for pattern in PRUNE_PATTERNS)


def _is_library(name: str) -> bool:
    """A shared library other binaries link to (as opposed to a Python extension module, a Qt plugin,
    or an executable, which are the roots something loads by path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.startswith("lib") and ".so" in base and "/plugins/" not in name.replace("\\", "/")


def unreachable_libraries(binaries: list[tuple], imports_of) -> set[str]:
    """Bundle paths of shared libraries that no kept extension module, plugin or executable needs.

    imports_of(source path) gives the names of the libraries a binary needs, transitively (ldd).
    """
    needed: set[str] = set()
    for dest, source, typecode in binaries:
        if typecode != "SYMLINK" and not _is_library(dest):
            needed.update(Path(name).name for name in imports_of(source))
    dropped = set()
    for dest, _source, typecode in binaries:
        base = Path(dest).name
        if typecode == "SYMLINK" or not _is_library(dest) or base in needed:
            continue
        if any(fnmatch.fnmatch(base, pattern) for pattern in DLOPENED):
            continue
        dropped.add(dest)
    return dropped


def prune(binaries: list[tuple], datas: list[tuple], imports_of) -> tuple[list[tuple], list[tuple]]:
    """The Linux bundle without what PRUNE_PATTERNS names and the libraries only that needed."""
    binaries = [entry for entry in binaries if not is_pruned(entry[0])]
    datas = [entry for entry in datas if not is_pruned(entry[0])]
    dropped = unreachable_libraries(binaries, imports_of)
    binaries = [entry for entry in binaries if entry[0] not in dropped]
    present = {entry[0] for entry in binaries + datas if entry[2] != "SYMLINK"}

    def dangling(entry: tuple) -> bool:  # a symlink PyInstaller made to something now gone
        return entry[2] == "SYMLINK" and _symlink_target(entry) not in present

    return [entry for entry in binaries if not dangling(entry)], [entry for entry in datas if not dangling(entry)]


def _symlink_target(entry: tuple) -> str:
    dest, source, _typecode = entry
    return os.path.normpath(os.path.join(os.path.dirname(dest), source)).replace("\\", "/")
