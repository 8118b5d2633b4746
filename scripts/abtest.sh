#!/usr/bin/env bash
# A/B comparison of two revisions on one `postern bench` scenario, run in
# alternation (A, B, A, B, ...) so that both see the same machine: only
# ratios measured in one run are comparable.
# Usage: scripts/abtest.sh REV_A REV_B [rounds] [bench flags...]
# e.g.   scripts/abtest.sh 65b5987 HEAD 3 -c 48 -size 2048
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(-c 48 -size 2048)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # REV -> $work/REV/postern
  mkdir -p "$work/$1"
  git archive "$1" | tar -x -C "$work/$1"
  (cd "$work/$1" && go build -o postern ./cmd/postern)
}

run() { # REV: one 8 s run of the scenario against a fresh data directory
  local B=$work/$1/postern data
  data=$(mktemp -d -p "$work")
  $B --data "$data" New-AcceptedDomain -Name contoso.com -DomainName contoso.com >/dev/null
  $B --data "$data" Set-TransportConfig -SmtpClientAuthenticationDisabled '$false' >/dev/null
  for i in $(seq 1 16); do
    echo "New-Mailbox -Name dev$i -PrimarySmtpAddress dev$i@contoso.com -Password Bench-Pass-1"
    echo "dev$i@contoso.com:Bench-Pass-1" >> "$data/users.txt"
  done > "$data/setup.ps1"
  $B --data "$data" shell -f "$data/setup.ps1" >/dev/null
  # Revisions with per-address connection caps take flags to lift them.
  local caps=()
  if $B serve --help 2>&1 | grep -q connection-rate-per-ip; then
    caps=(--max-connections-per-ip 0 --connection-rate-per-ip 0)
  fi
  # Revisions with IMAP4 and POP3 listeners: off, as they are not measured.
  if $B serve --help 2>&1 | grep -q -- -pop3s; then
    caps+=(--imap off --imaps off --pop3 off --pop3s off)
  fi
  $B serve --data "$data" --hostname localhost --log-level warn "${caps[@]}" \
    --submission 127.0.0.1:3599 --submissions off --mx off 2>/dev/null &
  local server=$!
  sleep 1.5
  printf '%-10s ' "$1"
  $B bench -cafile "$data/tls/cert.pem" -users-file "$data/users.txt" -to dev1@contoso.com \
    -d 8s -addr 127.0.0.1:3599 "${flags[@]}" | grep -E '^rate' | tr -s ' '
  kill $server; wait $server 2>/dev/null || true
}

build "$a"; build "$b"
echo "scenario: ${flags[*]}"
for _ in $(seq 1 "$rounds"); do run "$a"; run "$b"; done
