# Builds dist\SigDesk-<version>-setup.exe on Windows 10/11 (x64).
# Needs: Python 3.11+ (python.org), Inno Setup 6 (ISCC.exe on PATH or in its default folder).
# pywebview uses Edge WebView2 there (preinstalled on Windows 11; the Evergreen runtime otherwise).
$ErrorActionPreference = "Stop"
$Root = Resolve-Path "$PSScriptRoot\..\.."
Set-Location $Root
if (-not (Test-Path .venv)) { py -3 -m venv .venv }
.\.venv\Scripts\python -m pip install -e ".[packaging]" pythonnet
$Version = .\.venv\Scripts\python -c "from sigdesk import __version__; print(__version__)"
$Started = Get-Date
.\.venv\Scripts\python -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\sigdesk.spec
$Iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
if (-not $Iscc) { $Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $Iscc "/DAppVersion=$Version" packaging\windows\sigdesk.iss
"Built dist\SigDesk-$Version-setup.exe in $([int]((Get-Date) - $Started).TotalSeconds) s"
