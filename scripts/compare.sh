#!/usr/bin/env bash
# Postern beside Postfix (with Dovecot for SASL) and Postfix's smtp-sink, the
# protocol ceiling: the same client (`postern bench`) against each in
# alternation, so that all of them see the same machine. Only the ratios of
# one run are comparable. A benchmark, not a test: nothing asserts a time,
# and `make test` does not run it.
#
# Usage: scripts/compare.sh [seconds per run (8)] [rounds (3)]
# Environment: COMPARE_CONNS (50), COMPARE_SIZE (10240), COMPARE_PORT_BASE (24000),
#              COMPARE_SCENARIOS (all: relay-new relay-reused sub-new sub-new-pq sub-reused rate),
#              COMPARE_TLS_GROUPS (X25519; empty: Go's defaults; see sub-new).
#
# Needs root (Postfix's master and Dovecot start as root and drop to their
# users), Debian's postfix and dovecot-core, python3 and openssl. Everything
# is private: one temporary directory holds each server's configuration,
# queue, mailboxes, sockets and logs; every listener is on 127.0.0.1; no
# server sends a DNS query off the machine (Postern's resolver is a loopback
# stub answering NXDOMAIN; Postfix has every DNS lookup switched off).
# The trap stops every process it started and removes the directory.
#
# Scenarios (50 connections, 10 KiB messages, one local recipient):
#   relay-new     port 25 role, no TLS, no AUTH, a new connection per message
#   relay-reused  the same, connections reused
#   sub-new       STARTTLS + AUTH PLAIN (50 mailboxes), a new connection per
#                 message, TLS sessions resumed (the client keeps a session cache);
#                 the client offers the key exchanges in COMPARE_TLS_GROUPS
#                 (X25519), so that both servers do the same one: Debian's
#                 Postfix links OpenSSL 3.0, which has no ML-KEM and answers
#                 X25519 whatever a client offers, while Postern (Go's
#                 crypto/tls) prefers the hybrid X25519MLKEM768 when it is
#                 offered, which costs it, and the client, an ML-KEM
#                 operation more per connection. Devices offer X25519 or P-256.
#   sub-new-pq    sub-new with the client's default groups (Go's: X25519MLKEM768
#                 first): Postern answers with the hybrid, Postfix with X25519
#   sub-reused    the same, connections reused
#   rate          open loop at half of each server's median peak of relay-reused
#                 and sub-reused: the p99 latency a client sees below the peak
# smtp-sink speaks no TLS, so it is the ceiling of the relay scenarios only.
#
# CPU per message: each run counts the machine's busy time (/proc/stat: user,
# nice, system, irq, softirq) from the client's start until the server has
# done with what it accepted (for Postfix: until its queue has drained, so
# its deliveries count), less the client's own CPU (its summary's
# client_cpu_s), over the messages accepted. Everything else running on the
# machine counts too: run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-8}
rounds=${2:-3}
conns=${COMPARE_CONNS:-50}
size=${COMPARE_SIZE:-10240}
base=${COMPARE_PORT_BASE:-24000}
scenarios=${COMPARE_SCENARIOS:-relay-new relay-reused sub-new sub-new-pq sub-reused rate}
groups=${COMPARE_TLS_GROUPS-X25519}

[ "$(id -u)" = 0 ] || { echo "compare.sh: needs root (Postfix's master and Dovecot drop privileges themselves)" >&2; exit 1; }
for tool in postfix smtp-sink dovecot doveadm openssl python3 sqlite3; do
  command -v $tool >/dev/null || { echo "compare.sh: $tool is missing (apt-get install -y postfix dovecot-core openssl python3 sqlite3)" >&2; exit 1; }
done
id postfix >/dev/null && getent group postdrop >/dev/null || { echo "compare.sh: the postfix user or postdrop group is missing (Debian's postfix package creates them)" >&2; exit 1; }

P_MX=127.0.0.1:$((base + 25))    # Postern, 25 role
P_SUB=127.0.0.1:$((base + 87))   # Postern, 587 role
F_MX=127.0.0.1:$((base + 125))   # Postfix smtpd
F_SUB=127.0.0.1:$((base + 187))  # Postfix submission (STARTTLS required, Dovecot SASL)
S_MX=127.0.0.1:$((base + 225))   # smtp-sink
DNS_PORT=$((base + 53))

make -s build
B=$PWD/bin/postern
T=$(mktemp -d /tmp/postern-compare.XXXXXX)
chmod 0755 "$T"
pids=()
cleanup() {
  set +e
  [ -f "$T/postfix/etc/main.cf" ] && postfix -c "$T/postfix/etc" stop >/dev/null 2>&1
  [ -f "$T/dovecot/dovecot.conf" ] && dovecot -c "$T/dovecot/dovecot.conf" stop >/dev/null 2>&1
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  # Postfix's master exits after its children: wait for it by its pid file.
  local m; m=$(cat "$T/postfix/spool/pid/master.pid" 2>/dev/null | tr -d ' ')
  for _ in $(seq 1 50); do [ -n "$m" ] && kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
  [ -n "${COMPARE_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # ADDR: until something accepts on it (30 s)
  local host=${1%:*} port=${1##*:}
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "compare.sh: nothing listens on $1" >&2; exit 1
}

# One certificate for both TLS servers: ECDSA P-256, what Postern generates.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
chmod 0644 "$T/cert.pem" "$T/key.pem"

# 50 mailboxes, one password (Postern verifies with argon2id; Dovecot too).
for i in $(seq 1 "$conns"); do echo "dev$i@contoso.com:Bench-Pass-1"; done > "$T/users.txt"

# --- A loopback DNS stub: NXDOMAIN for every question (Postern's SPF, DKIM and
# DMARC lookups for the outside sender find no record, as for most senders).
cat > "$T/dns.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 12:
        continue
    # Same ID and question; QR, RD, RA, RCODE=3 (NXDOMAIN); no records.
    s.sendto(q[:2] + bytes([0x81 | (q[2] & 0x01), 0x83]) + q[4:6] + b"\0\0\0\0\0\0" + q[12:], peer)
EOF
python3 "$T/dns.py" "$DNS_PORT" & pids+=($!)

# --- Postern
mkdir -p "$T/postern"
$B --data "$T/postern" New-AcceptedDomain -Name contoso.com -DomainName contoso.com >/dev/null
$B --data "$T/postern" Set-TransportConfig -SmtpClientAuthenticationDisabled '$false' >/dev/null
for i in $(seq 1 "$conns"); do
  echo "New-Mailbox -Name dev$i -PrimarySmtpAddress dev$i@contoso.com -Password Bench-Pass-1"
done > "$T/postern/setup.ps1"
$B --data "$T/postern" shell -f "$T/postern/setup.ps1" >/dev/null
# The load comes from one address: lift the per-address caps that would
# (rightly) refuse it.
$B serve --data "$T/postern" --hostname localhost --log-level warn \
  --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --resolver "127.0.0.1:$DNS_PORT" \
  --max-connections-per-ip 0 --connection-rate-per-ip 0 \
  --mx "$P_MX" --submission "$P_SUB" --submissions off --admin off \
  --imap off --imaps off --pop3 off --pop3s off 2>"$T/postern.log" & pids+=($!)
postern_pid=$!

# --- Dovecot: SASL only (no mail protocol), passwd-file users, its
# authentication cache on (its default is off) for longer than the run.
# The hash scheme is COMPARE_DOVECOT_SCHEME: SHA512-CRYPT (default; what most
# Dovecot guides configure, a few ms a verification) or ARGON2ID (each user's
# hash copied from Postern's database: argon2id m=19 MiB, t=2, the same cost
# as Postern's). Dovecot 2.3 keeps the looked-up hash in its cache and
# verifies the password against it again at every AUTH, in its one auth
# process, so with ARGON2ID every AUTH costs Postfix a verification (Postern
# verifies once per mailbox per 5 minutes and serves the rest from its
# verified-login cache). SHA512-CRYPT is the default because it favours
# Postfix.
mkdir -p "$T/dovecot/run" "$T/dovecot/state"
case ${COMPARE_DOVECOT_SCHEME:-SHA512-CRYPT} in
  ARGON2ID)
    sqlite3 -separator : "$T/postern/postern.db" \
      "SELECT primary_smtp_address, '{ARGON2ID}' || password_hash FROM mailboxes ORDER BY id" > "$T/dovecot/users" ;;
  *)
    hash=$(doveadm pw -s "${COMPARE_DOVECOT_SCHEME:-SHA512-CRYPT}" -p Bench-Pass-1)
    sed "s|:Bench-Pass-1\$|:$hash|" "$T/users.txt" > "$T/dovecot/users" ;;
esac
[ "$(grep -c '{' "$T/dovecot/users")" = "$conns" ] || { echo "compare.sh: could not write Dovecot's users" >&2; exit 1; }
chmod 0644 "$T/dovecot/users"
cat > "$T/dovecot/dovecot.conf" <<EOF
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
log_path = $T/dovecot/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
default_login_user = dovenull
default_internal_user = dovecot
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {
  driver = passwd-file
  args = $T/dovecot/users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
EOF
dovecot -c "$T/dovecot/dovecot.conf"

# --- Postfix: its own configuration, queue and data directories; delivery
# to Maildir mailboxes of a virtual domain (virtual(8)); no chroot, so that
# smtpd reaches Dovecot's socket by its path.
F=$T/postfix
mkdir -p "$F/etc" "$F/spool" "$F/data" "$F/vmail"
chown postfix "$F/data"
chown nobody:nogroup "$F/vmail"
cut -d: -f1 "$T/users.txt" | awk -F@ '{ print $0, "contoso.com/" $1 "/" }' > "$F/etc/vmailbox"
cat > "$F/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $F/spool
data_directory = $F/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $F/maillog
maillog_file_prefixes = $T
myhostname = localhost
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:9
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
disable_dns_lookups = yes
smtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
biff = no
virtual_mailbox_domains = contoso.com
virtual_mailbox_base = $F/vmail
virtual_mailbox_maps = texthash:$F/etc/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
virtual_minimum_uid = 100
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = $T/cert.pem
smtpd_tls_key_file = $T/key.pem
smtpd_tls_security_level = may
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
smtpd_sasl_type = dovecot
smtpd_sasl_path = $T/dovecot/run/auth-postfix
EOF
cat > "$F/etc/master.cf" <<EOF
$F_MX     inet  n - n - - smtpd
$F_SUB    inet  n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
virtual    unix  - n n - - virtual
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
postfix -c "$F/etc" check || { echo "compare.sh: postfix check failed:" >&2; tail -20 "$F/maillog" >&2; exit 1; }
postfix -c "$F/etc" start >/dev/null 2>&1 || { echo "compare.sh: Postfix did not start:" >&2; tail -20 "$F/maillog" >&2; exit 1; }

# --- smtp-sink: accepts and discards (no disk, no TLS): the protocol ceiling.
smtp-sink -u postfix "$S_MX" 1024 & pids+=($!)

wait_port "$P_MX"; wait_port "$P_SUB"; wait_port "$F_MX"; wait_port "$F_SUB"; wait_port "$S_MX"

postfix_backlog() { find "$F/spool/incoming" "$F/spool/active" "$F/spool/maildrop" -type f 2>/dev/null | wc -l; }
postfix_drain() { for _ in $(seq 1 600); do [ "$(postfix_backlog)" -eq 0 ] && break; sleep 0.1; done; }
# The machine's busy time so far, in clock ticks (idle, iowait and steal left out).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
TICKS=$(getconf CLK_TCK)
# Postern's own process CPU so far, in clock ticks: beside the machine's, it
# tells Postern's share from the kernel threads' and other processes'.
postern_ticks() { awk '{ print $14 + $15 }' "/proc/$postern_pid/stat"; }

# A run: one server, one scenario, one summary line into $T/results.
run() { # ROUND SCENARIO SERVER [extra bench flags]
  local round=$1 scenario=$2 server=$3; shift 3
  local kind=${scenario#rate:} addr flags=(-c "$conns" -size "$size" -d "${secs}s" "$@")
  case $kind in
    relay-*) flags+=(-tls none -from bench@example.net -to dev1@contoso.com) ;;
    sub-*)   flags+=(-cafile "$T/cert.pem" -users-file "$T/users.txt" -to dev1@contoso.com) ;;
  esac
  case $kind in sub-*-pq) ;; sub-*) [ -z "$groups" ] || flags+=(-groups "$groups") ;; esac
  case $kind in *-new|*-new-pq) flags+=(-per-conn 1) ;; esac
  case $kind:$server in
    relay-*:postern) addr=$P_MX ;; relay-*:postfix) addr=$F_MX ;; relay-*:smtp-sink) addr=$S_MX ;;
    sub-*:postern) addr=$P_SUB ;; sub-*:postfix) addr=$F_SUB ;;
  esac
  # Postfix delivers after it accepts: let its queue drain so that no run
  # pays for the one before (60 s at most).
  postfix_drain
  local out line t0 t1 p0 p1 cpu
  p0=$(postern_ticks); t0=$(busy_ticks)
  out=$($B bench -addr "$addr" "${flags[@]}" 2>&1) || true
  # What Postfix accepted it delivers after: its deliveries are part of its
  # cost per message, as Postern's filing is part of its own.
  [ "$server" = postfix ] && postfix_drain
  t1=$(busy_ticks); p1=$(postern_ticks)
  if [ "$round" = 0 ]; then
    echo "  warm-up $scenario $server: $(grep -o 'ok=[0-9]* err=[0-9]*' <<<"$out")" >&2
    return
  fi
  line=$(grep '^summary ' <<<"$out" || echo "summary msg_per_s=0 p99_ms=0 ok=0 err=-1 client_cpu_s=0")
  cpu=$(awk -v l="$line" -v d=$((t1 - t0)) -v p=$((p1 - p0)) -v hz="$TICKS" -v postern=$([ "$server" = postern ] && echo 1 || echo 0) 'BEGIN {
    n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
    m = d / hz; s = m - v["client_cpu_s"]; ok = v["ok"]
    printf "machine_cpu_s=%.2f server_cpu_us=%.0f client_cpu_us=%.0f", m, (ok > 0 ? s * 1e6 / ok : 0), (ok > 0 ? v["client_cpu_s"] * 1e6 / ok : 0)
    if (postern) printf " process_cpu_us=%.0f", (ok > 0 ? p / hz * 1e6 / ok : 0) }')
  echo "round=$round scenario=$scenario server=$server load=$(cut -d' ' -f1 /proc/loadavg) $line $cpu" | tee -a "$T/results" >&2
  if grep -q '^errors' <<<"$out"; then sed -n '/^errors/,$p' <<<"$out" | grep -v '^summary' | sed "s/^/    $server: /" >&2; fi
}

servers_of() { case $1 in relay-*) echo postern postfix smtp-sink ;; *) echo postern postfix ;; esac; }

echo "compare.sh: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${secs}s per run, $rounds rounds, $conns connections, $size-byte messages" >&2
echo "postern $($B version 2>/dev/null | head -1), $(postconf -d mail_version 2>/dev/null), dovecot $(dovecot --version | cut -d' ' -f1)" >&2
: > "$T/results"
# Warm-up, not counted: every server has started its processes (Postfix
# forks smtpd on demand) and verified each mailbox's password once, as a
# server that has been running would have; the first-sign-in burst is a
# case of its own (see BENCHMARKS.md). Postern's password gate answers
# 454 4.7.0 to sign-ins beyond 8 waiting per address; the client retries.
# With COMPARE_DOVECOT_SCHEME=ARGON2ID, Dovecot's one auth process verifies
# one password at a time and an smtpd that waits 10 s for it exits ("no SASL
# authentication mechanisms"), after which master throttles smtpd for a
# minute: the warm-up then signs the users in one at a time.
echo "warm-up (not counted)" >&2
run 0 sub-new postern -d 15s
if [ "${COMPARE_DOVECOT_SCHEME:-}" = ARGON2ID ]; then
  while read -r user; do
    $B bench -addr "$F_SUB" -cafile "$T/cert.pem" -user "$user" -to dev1@contoso.com -c 1 -n 1 -d 60s >/dev/null
  done < "$T/users.txt"
else
  run 0 sub-new postfix -d 15s
fi
for server in $(servers_of relay-reused); do run 0 relay-reused "$server" -d 5s; done
run 0 sub-reused postern -d 5s
run 0 sub-reused postfix -d 5s
: > "$T/results"
for round in $(seq 1 "$rounds"); do
  for scenario in $scenarios; do
    [ "$scenario" = rate ] && continue
    # Alternate the order from round to round as well.
    list=$(servers_of "$scenario")
    [ $((round % 2)) = 0 ] && list=$(tr ' ' '\n' <<<"$list" | tac | tr '\n' ' ')
    for server in $list; do run "$round" "$scenario" "$server"; done
  done
done

median() { # SCENARIO SERVER KEY
  awk -v s="scenario=$1" -v v="server=$2" -v k="$3=" '
    $0 ~ " "s" " && $0 ~ " "v" " { for (i = 1; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' "$T/results" |
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Postern's rate over OTHER's, round by round: the servers of one round run
# back to back, so each of these ratios saw one state of the machine (whose
# speed drifts over a run; BENCHMARKS.md, "Fifth run").
round_ratios() { # SCENARIO OTHER
  awk -v s=" scenario=$1 " -v o=" server=$2 " '
    index($0, s) {
      r = 0; v = 0
      for (i = 1; i <= NF; i++) { if ($i ~ /^round=/) r = substr($i, 7) + 0; if ($i ~ /^msg_per_s=/) v = substr($i, 11) + 0 }
      if (index($0, " server=postern ")) p[r] = v; else if (index($0, o)) q[r] = v
      if (r > n) n = r
    }
    END { for (r = 1; r <= n; r++) if ((r in p) && (r in q) && q[r] > 0) printf " %.2f", p[r] / q[r] }' "$T/results"
}

if grep -qw rate <<<"$scenarios"; then
  for round in $(seq 1 "$rounds"); do
    for scenario in relay-reused sub-reused; do
      grep -qw "$scenario" <<<"$scenarios" || continue
      for server in $(servers_of "$scenario"); do
        peak=$(median "$scenario" "$server" msg_per_s)
        half=$(awk -v p="$peak" 'BEGIN { printf "%d", p / 2 }')
        [ "$half" -gt 0 ] || continue
        run "$round" "rate:$scenario" "$server" -rate "$half"
      done
    done
  done
fi

# The report: medians of the rounds and the ratios.
{
  echo
  echo "Medians of $rounds rounds ($secs s each, $conns connections, $size-byte messages); load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-14s %12s %12s %12s %16s %18s\n' scenario postern postfix smtp-sink postern/postfix postern/smtp-sink
  for scenario in relay-new relay-reused sub-new sub-new-pq sub-reused; do
    grep -qw "$scenario" <<<"$scenarios" || continue
    pn=$(median "$scenario" postern msg_per_s); pf=$(median "$scenario" postfix msg_per_s); ps=$(median "$scenario" smtp-sink msg_per_s)
    awk -v s="$scenario" -v a="$pn" -v b="$pf" -v c="$ps" 'BEGIN {
      printf "%-14s %8.0f/s   %8.0f/s   %s %16s %18s\n", s, a, b, (c > 0 ? sprintf("%8.0f/s  ", c) : "         -  "),
        (b > 0 ? sprintf("%.2fx", a / b) : "-"), (c > 0 ? sprintf("%.2f", a / c) : "-") }'
  done
  echo
  echo "Round by round (each round's servers run back to back): postern/postfix | postern/smtp-sink"
  for scenario in relay-new relay-reused sub-new sub-new-pq sub-reused; do
    grep -qw "$scenario" <<<"$scenarios" || continue
    printf '%-14s %s |%s\n' "$scenario" "$(round_ratios "$scenario" postfix)" "$(round_ratios "$scenario" smtp-sink)"
  done
  echo
  echo "CPU per message accepted, µs (median of $rounds): the machine's busy time less the client's"
  echo "(process: Postern's own user and system time; client: the client's, running against Postern)"
  printf '%-14s %12s %12s %12s %16s %12s %12s\n' scenario postern postfix smtp-sink postfix/postern process client
  for scenario in relay-new relay-reused sub-new sub-new-pq sub-reused; do
    grep -qw "$scenario" <<<"$scenarios" || continue
    pn=$(median "$scenario" postern server_cpu_us); pf=$(median "$scenario" postfix server_cpu_us); ps=$(median "$scenario" smtp-sink server_cpu_us)
    pp=$(median "$scenario" postern process_cpu_us); pc=$(median "$scenario" postern client_cpu_us)
    awk -v s="$scenario" -v a="$pn" -v b="$pf" -v c="$ps" -v p="$pp" -v k="$pc" 'BEGIN {
      printf "%-14s %12.0f %12.0f %12s %16s %12.0f %12.0f\n", s, a, b, (c > 0 ? sprintf("%.0f", c) : "-"), (a > 0 ? sprintf("%.2fx", b / a) : "-"), p, k }'
  done
  if grep -q 'scenario=rate:' "$T/results"; then
    echo
    echo "Open loop at half of each server's median peak: p99 latency (median of $rounds)"
    printf '%-14s %20s %20s %20s\n' scenario postern postfix smtp-sink
    for scenario in relay-reused sub-reused; do
      grep -q "scenario=rate:$scenario " "$T/results" || continue
      row=$(printf '%-14s' "$scenario")
      for server in postern postfix smtp-sink; do
        r=$(median "rate:$scenario" "$server" rate); p=$(median "rate:$scenario" "$server" p99_ms)
        if [ "$r" = 0 ]; then row+=$(printf ' %20s' -); else row+=$(printf ' %20s' "${p} ms @ ${r}/s"); fi
      done
      echo "$row"
    done
  fi
  errs=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^err=/ && $i != "err=0") n++ } END { print n + 0 }' "$T/results")
  [ "$errs" = 0 ] || echo "($errs runs had errors: see the lines above)"
}
