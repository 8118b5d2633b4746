#!/usr/bin/env bash
# Compares Postern's IMAP server with Dovecot's on this machine, in one run,
# with the same client (`postern bench-imap`, go-imap's client) and the same
# messages, both over implicit TLS on loopback with the same certificate:
#   - SELECT + UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER]) of N messages
#   - UID SEARCH TEXT over the same N messages (full text, bodies read)
#   - the memory (summed PSS of every process) of C sessions in IDLE
# Usage: scripts/imapbench.sh [messages] [idle-sessions] [rounds]
# Needs Debian's dovecot-imapd. The figures are in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
conns=${2:-1000}
rounds=${3:-5}
make -s build
B=$PWD/bin/postern
dir=$(mktemp -d)
chmod 755 "$dir"
cleanup() {
  kill "${server:-}" 2>/dev/null || true
  wait "${server:-}" 2>/dev/null || true
  doveadm -c "$dir/dv/dovecot.conf" stop 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

# Postern: one mailbox; connection caps lifted, as the load comes from one
# address far faster than any client would.
mkdir -p "$dir/p"
$B --data "$dir/p" New-AcceptedDomain -Name contoso.com -DomainName contoso.com >/dev/null
$B --data "$dir/p" New-Mailbox -Name bench -PrimarySmtpAddress bench@contoso.com -Password Bench-Pass-1 >/dev/null
start_postern() {
  $B serve --data "$dir/p" --hostname localhost --log-level warn \
    --max-connections-per-ip 0 --connection-rate-per-ip 0 \
    --submission off --submissions off --mx off --imap off --pop3 off --pop3s off \
    --imaps 127.0.0.1:3993 &
  server=$!
  for i in $(seq 100); do (echo >/dev/tcp/127.0.0.1/3993) 2>/dev/null && break; sleep 0.1; done
}
start_postern

# Dovecot: a private instance on a loopback port, Maildir, the same
# certificate, limits raised past the session count.
mkdir -p "$dir/dv/run" "$dir/dv/mail"
uid=$(id -u dovecot) gid=$(id -g dovecot)
chown -R "$uid:$gid" "$dir/dv/mail"
echo "bench@contoso.com:{PLAIN}Bench-Pass-1:$uid:$gid::$dir/dv/mail/bench" > "$dir/dv/passwd"
until [ -s "$dir/p/tls/cert.pem" ]; do sleep 0.1; done
cat > "$dir/dv/dovecot.conf" <<EOF
base_dir = $dir/dv/run
state_dir = $dir/dv/run
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$dir/p/tls/cert.pem
ssl_key = <$dir/p/tls/key.pem
auth_mechanisms = plain login
log_path = $dir/dv/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 100
default_process_limit = $((conns + 100))
default_client_limit = $((conns * 2 + 100))
default_vsz_limit = 0
passdb {
  driver = passwd-file
  args = $dir/dv/passwd
}
userdb {
  driver = passwd-file
  args = $dir/dv/passwd
}
protocol imap {
  mail_max_userip_connections = $((conns + 10))
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 13993
  }
}
EOF
start_dovecot() {
  dovecot -c "$dir/dv/dovecot.conf" 2>/dev/null
  for i in $(seq 100); do (echo >/dev/tcp/127.0.0.1/13993) 2>/dev/null && break; sleep 0.1; done
}
start_dovecot

bench() { $B bench-imap -cafile "$dir/p/tls/cert.pem" -user bench@contoso.com -password Bench-Pass-1 "$@"; }
# pss sums the proportional set size (KiB) of the given processes.
pss() { local t=0; for p in "$@"; do t=$((t + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0))); done; echo $t; }
dovecot_pids() { pgrep -f "$dir/dv/dovecot.conf" -d ' ' ; pgrep -x imap -d ' ' ; pgrep -x imap-login -d ' '; }

for target in postern:3993 dovecot:13993; do
  name=${target%%:*} port=${target##*:}
  echo "== $name"
  bench -addr 127.0.0.1:$port -mode fill -n "$n"
  bench -addr 127.0.0.1:$port -mode fetch -rounds "$rounds"
  bench -addr 127.0.0.1:$port -mode search -rounds "$rounds"
  # The IDLE sessions' memory is measured on a freshly started server, so
  # that what the fill and fetch left behind does not count.
  if [ $name = postern ]; then
    kill $server; wait $server || true; start_postern; before=$(pss $server)
  else
    doveadm -c "$dir/dv/dovecot.conf" stop; sleep 1; start_dovecot; before=$(pss $(dovecot_pids))
  fi
  bench -addr 127.0.0.1:$port -mode idle -c "$conns" -hold 5s > "$dir/idle.out" &
  b=$!
  until grep -q idling "$dir/idle.out" 2>/dev/null; do kill -0 $b || exit 1; sleep 0.2; done
  cat "$dir/idle.out"
  if [ $name = postern ]; then after=$(pss $server); else after=$(pss $(dovecot_pids)); fi
  wait $b
  echo "idle: memory $before KiB before, $after KiB with $conns sessions idling ($(( (after - before) / conns )) KiB per session)"
done
