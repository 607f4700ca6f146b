<#
.SYNOPSIS
  Installs (or upgrades) the KPE terminal agent as a Windows service.

.DESCRIPTION
  Run from the unzipped kpe-agent folder, in an elevated PowerShell:
      powershell -ExecutionPolicy Bypass -File .\install.ps1
  1. stops the kpe-agent service if it runs (upgrade),
  2. copies kpe-agent.exe and kpectl.exe to %ProgramFiles%\kpe-agent,
  3. restricts %ProgramData%\kpe-agent (configuration, outbox, logs) to
     SYSTEM and Administrators, owned by Administrators, then copies
     agent.yaml there unless one exists (an existing configuration is
     kept) and lets Users read that file only,
  4. restricts %ProgramData%\kpe-agent\secrets to SYSTEM and Administrators
     and creates the local API token there if it is missing,
  5. registers the service (kpe-agent.exe install --config ...) unless it
     exists, and sets its recovery actions: restart after 5 s, 5 s and
     30 s, failure count reset after a day, also when the agent exits
     with an error,
  6. sets the Smart Card service (SCardSvr) to start automatically and
     starts it, then starts kpe-agent if kpe-agent.exe check-config
     accepts the configuration (a new one has no terminal.id or
     terminal.site: set them, then Start-Service kpe-agent).
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

# 3. The data folder (configuration, outbox, logs, trust lists, secrets).
#    ProgramData's own ACL lets Users read files and create new ones (which
#    they then own). Instead: SYSTEM (S-1-5-18) and Administrators
#    (S-1-5-32-544) only, no inherited entries, owned by Administrators.
#    By SID: the names are localised.
#    The first time (a new folder, or one left by an older install.ps1 or
#    created by someone else), everything in it also gets Administrators
#    as owner and only the entries inherited from the folder. Later runs
#    (the folder is then owned by Administrators and protected) leave the
#    files' own entries alone, so that a read grant an operator added on
#    the API token survives an upgrade.
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
$hardened = $false
try {
    $acl = Get-Acl -LiteralPath $DataDir
    $hardened = $acl.AreAccessRulesProtected -and ($acl.GetOwner([Security.Principal.SecurityIdentifier]).Value -eq 'S-1-5-32-544')
} catch {
    # Not even readable by Administrators: someone else's folder.
}
if (-not $hardened) {
    Invoke-Native 'icacls.exe' @($DataDir, '/setowner', '*S-1-5-32-544', '/T', '/C', '/Q')
}
Invoke-Native 'icacls.exe' @($DataDir, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F', '/Q')
#    Any other entry of the folder itself (put there by whoever created it) goes.
$rules = (Get-Acl -LiteralPath $DataDir).GetAccessRules($true, $false, [Security.Principal.SecurityIdentifier])
foreach ($sid in ($rules | ForEach-Object { $_.IdentityReference.Value } | Select-Object -Unique)) {
    if ($sid -ne 'S-1-5-18' -and $sid -ne 'S-1-5-32-544') {
        Invoke-Native 'icacls.exe' @($DataDir, '/remove', "*$sid", '/Q')
    }
}
if (-not $hardened) {
    if (Test-Path $token) {
        Write-Warning "Resetting the permissions of the files in ${DataDir}: an account that must read $token needs its grant again"
    }
    if (Get-ChildItem -Force -LiteralPath $DataDir) {
        Invoke-Native 'icacls.exe' @((Join-Path $DataDir '*'), '/reset', '/T', '/C', '/Q')
    }
    Write-Host "Restricted $DataDir to SYSTEM and Administrators"
}
New-Item -ItemType Directory -Force -Path (Join-Path $DataDir 'logs') | Out-Null

#    Configuration: kept when it exists. The shipped file names its paths
#    under C:\ProgramData\kpe-agent; use the real data folder.
if (Test-Path $config) {
    Write-Host "Keeping the existing configuration $config"
} else {
    $text = [IO.File]::ReadAllText((Join-Path $src 'agent.yaml'))
    $text = $text.Replace('C:\ProgramData\kpe-agent', $DataDir)
    [IO.File]::WriteAllText($config, $text)  # UTF-8 without BOM
    Write-Host "Wrote ${config}: set terminal.id, terminal.site and the SAM and sync settings before use"
}
#    It holds no secret; Users (S-1-5-32-545) may read it (kpectl reads
#    api.listen and api.token_file from it). Nothing else in the folder.
Invoke-Native 'icacls.exe' @($config, '/grant:r', '*S-1-5-32-545:R', '/Q')

# 4. Secrets folder: SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544)
#    only, no inherited entries (as the data folder, but kept explicit so
#    that a grant on the data folder later does not reach it). Files
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
    Invoke-Native $exe @('install', '--config', $config)
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

# 7. Start, unless the configuration is not ready: a new agent.yaml has no
#    terminal.id or terminal.site, and the agent refuses to start without
#    them (the service would fail and be restarted every few seconds).
if ($NoStart) {
    Write-Host "Installed. Start it with: Start-Service $name"
} else {
    # Windows PowerShell turns the redirected standard error into errors,
    # which 'Stop' would throw.
    $ErrorActionPreference = 'Continue'
    $check = & $exe check-config --config $config 2>&1
    $checked = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    if ($checked -ne 0) {
        $check | ForEach-Object { Write-Warning "$_" }
        Write-Warning "Installed but not started: set terminal.id and terminal.site (and the SAM and sync settings) in $config, check it with: & '$exe' check-config --config '$config', then: Start-Service $name"
    } else {
        Start-Service -Name $name
        Write-Host "Installed and started. Check it with: & '$exe' status"
    }
}
