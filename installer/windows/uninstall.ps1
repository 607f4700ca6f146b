<#
.SYNOPSIS
  Removes the KPE terminal agent service and its program files.

.DESCRIPTION
  Run in an elevated PowerShell:
      powershell -ExecutionPolicy Bypass -File .\uninstall.ps1 [-Purge]
  Stops and unregisters the kpe-agent service and deletes
  %ProgramFiles%\kpe-agent. %ProgramData%\kpe-agent (the configuration, the
  API token, the outbox and the logs) is kept unless -Purge is given.
  WARNING: -Purge deletes the outbox; records not yet synced to the back
  office are lost (kpectl queue stats shows how many there are).
#>
[CmdletBinding()]
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'kpe-agent'),
    [string]$DataDir = (Join-Path $env:ProgramData 'kpe-agent'),
    [switch]$Purge
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'uninstall.ps1 must run as Administrator (an elevated PowerShell).'
}

$name = 'kpe-agent'
$exe = Join-Path $InstallDir 'kpe-agent.exe'

$svc = Get-Service -Name $name -ErrorAction SilentlyContinue
if ($svc) {
    if ($svc.Status -ne 'Stopped') {
        Write-Host "Stopping $name"
        Stop-Service -Name $name
        $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60))
    }
    if (Test-Path $exe) {
        & $exe uninstall
        if ($LASTEXITCODE -ne 0) { throw "kpe-agent.exe uninstall failed (exit code $LASTEXITCODE)" }
    } else {
        & sc.exe delete $name
        if ($LASTEXITCODE -ne 0) { throw "sc.exe delete $name failed (exit code $LASTEXITCODE)" }
    }
    Write-Host "Removed the service $name"
} else {
    Write-Host "The service $name is not installed"
}

if (Test-Path $InstallDir) {
    Remove-Item -Recurse -Force -Path $InstallDir
    Write-Host "Deleted $InstallDir"
}

if ($Purge) {
    if (Test-Path $DataDir) {
        Remove-Item -Recurse -Force -Path $DataDir
        Write-Host "Deleted $DataDir (configuration, API token, outbox, logs)"
    }
} else {
    Write-Host "Kept $DataDir (configuration, API token, outbox, logs); -Purge deletes it"
}
