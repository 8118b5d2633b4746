#!/usr/bin/env bash
# Measures Postern's SMTP AUTH submission throughput on loopback with
# `postern bench`, the figures in BENCHMARKS.md. Usage: scripts/loadtest.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
make -s build
B=$PWD/bin/postern
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT

# 16 mailboxes (a mailbox may hold 3 connections), SMTP AUTH on.
$B --data "$dir" New-AcceptedDomain -Name contoso.com -DomainName contoso.com >/dev/null
$B --data "$dir" Set-TransportConfig -SmtpClientAuthenticationDisabled '$false'
for i in $(seq 1 16); do
  echo "New-Mailbox -Name dev$i -PrimarySmtpAddress dev$i@contoso.com -Password Bench-Pass-1"
  echo "dev$i@contoso.com:Bench-Pass-1" >> "$dir/users.txt"
done > "$dir/setup.ps1"
$B --data "$dir" shell -f "$dir/setup.ps1" >/dev/null

# The load comes from one address, far faster than any device: lift the
# per-address connection caps, which would otherwise (rightly) refuse it.
$B serve --data "$dir" --hostname localhost --log-level warn \
  --max-connections-per-ip 0 --connection-rate-per-ip 0 \
  --submission 127.0.0.1:3587 --submissions 127.0.0.1:3465 --mx off \
  --imap off --imaps off --pop3 off --pop3s off &
server=$!
sleep 1

run() { echo "== $*"; $B bench -cafile "$dir/tls/cert.pem" -users-file "$dir/users.txt" -to dev1@contoso.com -d "${secs}s" "$@" | sed 1d; echo; }
run -addr 127.0.0.1:3587 -c 16 -size 2048                          # STARTTLS + AUTH, connections reused
run -addr 127.0.0.1:3587 -c 48 -size 2048                          # 3 connections per mailbox, the limit
run -addr 127.0.0.1:3587 -c 16 -size 2048 -per-conn 1              # new connection per message (scanners)
run -addr 127.0.0.1:3465 -tls implicit -c 16 -size 2048 -per-conn 1 # the same on 465
run -addr 127.0.0.1:3587 -c 16 -size 1048576                       # 1 MiB messages
