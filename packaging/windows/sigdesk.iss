; Inno Setup 6 script: SigDesk-<version>-setup.exe from the PyInstaller bundle in dist\sigdesk.
; Build: packaging\windows\build.ps1 (runs PyInstaller, then ISCC.exe on this file).
; Installs per machine into Program Files; each user's data lives in %LOCALAPPDATA%\SigDesk
; (platformdirs), never in the install folder. Upgrades install over the old version and keep the
; data (migrations run at the next start); uninstalling keeps the data unless the user ticks "delete".

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define DistDir "..\..\dist\sigdesk"

[Setup]
AppId={{6C1A2E1B-3F3B-4C8E-9A47-5D7C0E2B9F10}
AppName=SigDesk
AppVersion={#AppVersion}
AppPublisher=SigDesk
DefaultDirName={autopf}\SigDesk
DefaultGroupName=SigDesk
DisableProgramGroupPage=yes
OutputDir=..\..\dist
OutputBaseFilename=SigDesk-{#AppVersion}-setup
SetupIconFile=..\icons\sigdesk.ico
UninstallDisplayIcon={app}\SigDesk.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
CloseApplications=yes
WizardStyle=modern

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; an upgrade replaces the bundle's libraries wholesale, so no stale file from the old version stays
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{group}\SigDesk"; Filename: "{app}\SigDesk.exe"; Parameters: "desktop"
Name: "{autodesktop}\SigDesk"; Filename: "{app}\SigDesk.exe"; Parameters: "desktop"; Tasks: desktopicon

[Tasks]
Name: desktopicon; Description: "Create a desktop shortcut"; Flags: unchecked

[Run]
Filename: "{app}\SigDesk.exe"; Parameters: "desktop"; Description: "Start SigDesk"; Flags: nowait postinstall skipifsilent

[Code]
{ Ask once, at uninstall, whether to delete this user's data as well (default: keep it). }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  DataDir: String;
begin
  if CurUninstallStep = usPostUninstall then
  begin
    DataDir := ExpandConstant('{localappdata}\SigDesk');
    if DirExists(DataDir) and not UninstallSilent then
      if MsgBox('Also delete your SigDesk data (messages, contacts, settings) in ' + DataDir + '?' + #13#10 +
                'Choose No to keep it for a later reinstall. Make a backup first if unsure.',
                mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
        DelTree(DataDir, True, True, True);
  end;
end;
