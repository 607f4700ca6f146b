<#
.SYNOPSIS
  Installs (or upgrades) the KPE terminal agent as a Windows service.

.DESCRIPTION
  Run from the unzipped kpe-agent folder, in an elevated PowerShell:
      powershell -ExecutionPolicy Bypass -File .\install.ps1
  1. stops the kpe-agent service if it runs (upgrade),
  2. copies kpe-agent.exe and kpectl.exe to %ProgramFiles%\kpe-agent,
  3. copies agent.yaml to %ProgramData%\kpe-agent\agent.yaml unless one
     exists (an existing configuration is kept),
  4. restricts %ProgramData%\kpe-agent\secrets to SYSTEM and Administrators
     and creates the local API token there if it is missing,
  5. registers the service (kpe-agent.exe install -config ...) unless it
     exists, and sets its recovery actions: restart after 5 s, 5 s and
     30 s, failure count reset after a day, also when the agent exits
     with an error,
  6. sets the Smart Card service (SCardSvr) to start automatically and
     starts it, then starts kpe-agent.
  docs/install.md describes the result.
#>
[CmdletBinding()]
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'kpe-agent'),
    [string]$DataDir = (Join-Path $env:ProgramData 'kpe-agent'),
    # Register and configure, but do not start the service.
    [switch]$NoStart
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

function Invoke-Native([string]$File, [string[]]$Arguments) {
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw "$File $($Arguments -join ' ') failed (exit code $LASTEXITCODE)"
    }
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'install.ps1 must run as Administrator (an elevated PowerShell).'
}

$name = 'kpe-agent'
$src = $PSScriptRoot
$exe = Join-Path $InstallDir 'kpe-agent.exe'
$config = Join-Path $DataDir 'agent.yaml'
$secrets = Join-Path $DataDir 'secrets'
$token = Join-Path $secrets 'api-token'

foreach ($f in 'kpe-agent.exe', 'kpectl.exe', 'agent.yaml') {
    if (-not (Test-Path (Join-Path $src $f))) { throw "$f is missing next to install.ps1 ($src)." }
}

# 1. Upgrade: stop the running service first (the .exe is locked while it runs).
$svc = Get-Service -Name $name -ErrorAction SilentlyContinue
if ($svc -and $svc.Status -ne 'Stopped') {
    Write-Host "Stopping $name"
    Stop-Service -Name $name
    $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
}

# 2. Program files.
New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
Copy-Item -Force -Path (Join-Path $src 'kpe-agent.exe'), (Join-Path $src 'kpectl.exe') -Destination $InstallDir
Write-Host "Installed kpe-agent.exe and kpectl.exe in $InstallDir"

# 3. Configuration: kept when it exists. The shipped file names its paths
#    under C:\ProgramData\kpe-agent; use the real data folder.
New-Item -ItemType Directory -Force -Path $DataDir, (Join-Path $DataDir 'logs') | Out-Null
if (Test-Path $config) {
    Write-Host "Keeping the existing configuration $config"
} else {
    $text = [IO.File]::ReadAllText((Join-Path $src 'agent.yaml'))
    $text = $text.Replace('C:\ProgramData\kpe-agent', $DataDir)
    [IO.File]::WriteAllText($config, $text)  # UTF-8 without BOM
    Write-Host "Wrote ${config}: set terminal.id, terminal.site and the SAM and sync settings before use"
}

# 4. Secrets folder: SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544)
#    only, no inherited entries (SIDs: the names are localised). Files
#    created in it inherit this ACL.
New-Item -ItemType Directory -Force -Path $secrets | Out-Null
Invoke-Native 'icacls.exe' @($secrets, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')
if (Test-Path $token) {
    Write-Host "Keeping the existing API token $token"
} else {
    $bytes = New-Object byte[] 32
    $rng = [Security.Cryptography.RandomNumberGenerator]::Create()
    $rng.GetBytes($bytes)
    $rng.Dispose()
    $hex = -join ($bytes | ForEach-Object { $_.ToString('x2') })
    [IO.File]::WriteAllText($token, $hex + "`n")
    Write-Host "Created the local API token $token"
}

# 5. The service and its recovery actions.
if (-not $svc) {
    Invoke-Native $exe @('install', '-config', $config)
} else {
    Write-Host "The service $name exists; kept its registration (uninstall.ps1 first to change it)"
}
# kpe-agent install sets one restart action; set three, and count an exit
# with an error as a failure too (failureflag), not only a crash.
Invoke-Native 'sc.exe' @('failure', $name, 'reset=', '86400', 'actions=', 'restart/5000/restart/5000/restart/30000')
Invoke-Native 'sc.exe' @('failureflag', $name, '1')

# 6. The Smart Card service: PC/SC needs it; Windows starts it on demand
#    only when a reader is present, so make it automatic.
$scard = Get-Service -Name 'SCardSvr' -ErrorAction SilentlyContinue
if (-not $scard) {
    Write-Warning 'The Smart Card service (SCardSvr) does not exist on this machine; the agent cannot reach the readers.'
} else {
    if ($scard.StartType -ne 'Automatic') {
        Set-Service -Name 'SCardSvr' -StartupType Automatic
        Write-Host 'Set the Smart Card service (SCardSvr) to start automatically'
    }
    if ($scard.Status -ne 'Running') {
        try { Start-Service -Name 'SCardSvr' } catch { Write-Warning "Could not start SCardSvr: $_" }
    }
}

if ($NoStart) {
    Write-Host "Installed. Start it with: Start-Service $name"
} else {
    Start-Service -Name $name
    Write-Host "Installed and started. Check it with: & '$exe' status"
}
