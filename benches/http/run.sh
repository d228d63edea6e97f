#!/usr/bin/env bash
# HTTP benchmark: linkgate (examples/hyper, examples/axum) against nginx `map` + `return 302`.
#
#   benches/http/run.sh                          # ~8 min + build: 3 rounds x 5 servers x 10 s, reload, perf
#   ROUNDS=2 DURATION=8s benches/http/run.sh     # shorter
#
# What it does (details in BENCHMARKS.md, section "HTTP: linkgate vs nginx"):
#  1. installs nginx-light and wrk if missing; builds the hyper and axum examples (release);
#  2. generates one 100 000-link nginx map (gen_map.py) that both nginx and linkgate load, and
#     the list of its keys;
#  3. runs, in alternating rounds, nginx (access_log on), nginx (access_log off), linkgate-hyper,
#     linkgate-hyper --no-clicks (what click logging costs) and linkgate-axum, each for DURATION
#     under wrk (1 thread, CONNECTIONS connections, a random
#     key per request: random_keys.lua), the server pinned to CPU SERVER_CPU and wrk to WRK_CPU;
#     per run: req/s, p50/p99, errors, server user/system CPU time per request (/proc/PID/stat),
#     and for linkgate the click pipeline's checks (click file lines = `recorded` = requests);
#  4. reload under load: linkgate-hyper with a 1M-link map, RELOAD_DURATION with and without a
#     map swap every RELOAD_EVERY s; optionally nginx with one HUP reload of a 1M-link map;
#  5. one `perf record` of linkgate-hyper under load (if perf works);
#  6. prints a markdown report and adds it to BENCHMARKS.md (BENCHMARKS_MD= to skip).
#
# Only 127.0.0.1; every process it starts is stopped on exit (also on error or Ctrl-C); files go
# to a temp dir under /tmp (kept only on failure or with KEEP_TMP=1).
#
# Environment (defaults):
#   ROUNDS=3 DURATION=10s CONNECTIONS=50 WARMUP=2s LINKS=100000
#   RELOAD_LINKS=1000000 RELOAD_DURATION=20s RELOAD_EVERY=1 RELOAD_MODE=mv|hup
#   NGINX_RELOAD=1 (0 skips the nginx 1M-map reload run, ~1 min)   PERF=1 PERF_SECONDS=10
#   SERVER_CPU=0 WRK_CPU=1 PORT=18480 (first free port from there)
#   NICE=-10: niceness of the servers and wrk against other work on the shared CPUs (0 = as
#   started; on this VM it made little difference)
#   WAIT_MAX=1200 WAIT_POLL=30: how long to wait, polling, while another benchmark runs
#   (`target/release/deps/<any benches/*.rs>-*`, or a cargo-fuzz target); then it goes ahead
#   BENCHMARKS_MD=<repo>/BENCHMARKS.md  KEEP_TMP=0  SKIP_BUILD=0
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COMMAND_LINE="$(for v in ROUNDS DURATION CONNECTIONS WARMUP LINKS RELOAD_LINKS RELOAD_DURATION RELOAD_EVERY RELOAD_MODE NGINX_RELOAD PERF PERF_SECONDS; do if [[ -n ${!v:-} ]]; then printf '%s=%s ' "$v" "${!v}"; fi; done)benches/http/run.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2s}
LINKS=${LINKS:-100000}
RELOAD_LINKS=${RELOAD_LINKS:-1000000}
RELOAD_DURATION=${RELOAD_DURATION:-20s}
RELOAD_EVERY=${RELOAD_EVERY:-1}
RELOAD_MODE=${RELOAD_MODE:-mv}
NGINX_RELOAD=${NGINX_RELOAD:-1}
PERF=${PERF:-1}
PERF_SECONDS=${PERF_SECONDS:-10}
SERVER_CPU=${SERVER_CPU:-0}
NICE=${NICE:--10}
WRK_CPU=${WRK_CPU:-1}
PORT=${PORT:-18480}
WAIT_MAX=${WAIT_MAX:-1200}
WAIT_POLL=${WAIT_POLL:-30}
BENCHMARKS_MD=${BENCHMARKS_MD-$ROOT/BENCHMARKS.md}
KEEP_TMP=${KEEP_TMP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
SERVERS=(nginx nginx-nolog hyper hyper-noclicks axum)

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "ROUNDS must be a positive integer"
[[ $RELOAD_MODE == mv || $RELOAD_MODE == hup ]] || die "RELOAD_MODE must be mv or hup"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be an integer"
# Measured processes are started as `nice -n $NICE taskset -c CPU cmd` (each execs the next, so
# $! is the server's own pid).

# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup: every pid we start goes into PIDS and is stopped on exit.
PIDS=()
NGINX_WORKERS=()
TMP=""

state_of() { # pid -> process state letter, or nothing when gone
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  printf '%s' "${s%% *}"
}
alive() { local st; st=$(state_of "$1"); [[ -n $st && $st != Z && $st != X ]]; }
forget() { local p keep=(); for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; PIDS=("${keep[@]}"); }

# SIGTERM, wait up to $2 s, then SIGKILL; reaps our children. Returns the exit status.
stop_pid() {
  local pid=$1 t=${2:-30} i=0 rc=0
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do
      sleep 0.1
      i=$((i + 1))
      if (( i > t * 10 )); then
        log "pid $pid still running ${t}s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
    done
  fi
  wait "$pid" 2>/dev/null || rc=$?
  forget "$pid"
  return $rc
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do stop_pid "$p" 15 || true; done
  for p in "${NGINX_WORKERS[@]}"; do
    alive "$p" && { log "nginx worker $p left behind: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; }
  done
  if [[ -n $TMP && -d $TMP ]]; then
    rm -f "$TMP"/*.map "$TMP"/keys*.txt "$TMP"/reload/*.map* "$TMP"/*.jsonl "$TMP"/perf.data* 2>/dev/null || true
    if [[ $rc -eq 0 && $KEEP_TMP != 1 ]]; then
      rm -rf "$TMP"
    else
      log "logs kept in $TMP"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# 1. Tools and build.
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  log "installing nginx-light and wrk"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y nginx-light wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nginx-light wrk >/dev/null; }
fi
for t in nginx wrk taskset curl python3 getconf; do command -v "$t" >/dev/null || die "$t not found"; done
NGINX=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
(( SERVER_CPU < NCPU && WRK_CPU < NCPU )) || die "CPU $SERVER_CPU or $WRK_CPU does not exist ($NCPU CPUs)"

PERF_OK=0
if [[ $PERF == 1 ]]; then
  if ! command -v perf >/dev/null; then
    log "installing linux-perf (best effort)"
    apt-get install -y linux-perf >/dev/null 2>&1 || true
  fi
  if command -v perf >/dev/null && perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
    PERF_OK=1
    # Hardware counters are often missing in VMs; cpu-clock sampling works there.
    PERF_HW=$(perf stat -x, -e instructions true 2>&1 | grep -q 'not supported' && echo no || echo yes)
  fi
fi

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ $SKIP_BUILD != 1 ]]; then
  log "building: cargo build --release --example hyper --example axum"
  (cd "$ROOT" && cargo build --release --example hyper --example axum) >&2
fi
TMP=$(mktemp -d /tmp/linkgate-http.XXXXXX)
mkdir -p "$TMP/bin" "$TMP/logs" "$TMP/wrk" "$TMP/reload"
# Run copies: a rebuild by someone else in the shared target dir can't swap binaries mid-run.
for b in hyper axum; do
  [[ -x $TARGET_DIR/release/examples/$b ]] || die "$TARGET_DIR/release/examples/$b missing"
  cp "$TARGET_DIR/release/examples/$b" "$TMP/bin/$b"
done
log "temp dir $TMP"

# First free port from $PORT.
port_busy() { [[ -n $(ss -ltnH "sport = :$1" 2>/dev/null) ]]; }
while port_busy "$PORT"; do PORT=$((PORT + 1)); done
BASE="http://127.0.0.1:$PORT"

# ---------------------------------------------------------------------------------------------
# 2. Maps and keys.
MAP=$TMP/links.map
KEYS=$TMP/keys.txt
log "generating the $LINKS-link map"
python3 "$HERE/gen_map.py" "$LINKS" "$MAP" --keys "$KEYS" --seed 42 --variant x
FIRST_KEY=$(head -1 "$KEYS")
# The first key's target (first link line of the map; line 1 is `map ... {`, line 2 `default`).
FIRST_TARGET=$(sed -n '3{s/^ *[^ ]* //;s/;$//;p;q}' "$MAP")

# ---------------------------------------------------------------------------------------------
# Servers.
SERVER_PID=""
PROBES=0 # requests sent outside wrk (readiness and checks) to the running server

# Waits until $1 (pid) answers 302 on key $3; $2 = timeout in seconds.
wait_ready() {
  local pid=$1 t=$2 key=$3 start=$SECONDS code
  while :; do
    alive "$pid" || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE$key" || true)
    if [[ $code != 000 ]]; then
      PROBES=$((PROBES + 1))
      [[ $code == 302 ]] && return 0
    fi
    (( SECONDS - start < t )) || return 1
    sleep 0.2
  done
}

# The Location for a key must be the map's target. $1 = key, $2 = expected.
probe() {
  local got
  got=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 "$BASE$1" || true)
  PROBES=$((PROBES + 1))
  [[ $got == "302 $2" ]] || { log "probe $1: got '$got', expected '302 $2'"; return 1; }
}

# start_nginx NAME MAPFILE on|off KEY (a key of the map, for the readiness check)
start_nginx() {
  local dir=$TMP/nginx-$1 map=$2 al
  rm -rf "$dir"
  mkdir -p "$dir"
  if [[ $3 == on ]]; then al="access_log $dir/access.log combined buffer=64k;"; else al="access_log off;"; fi
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$PORT|g" -e "s|@MAP@|$map|g" \
      -e "s|@ACCESS_LOG@|$al|g" -e "s|@MAP_HASH_MAX_SIZE@|4194304|g" \
      "$HERE/nginx.conf.in" >"$dir/nginx.conf"
  PROBES=0
  nice -n "$NICE" taskset -c "$SERVER_CPU" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  if ! wait_ready "$SERVER_PID" 300 "$4"; then
    tail -5 "$dir/error.log" "$dir/stdout.log" >&2 || true
    die "nginx ($1) did not come up"
  fi
  [[ $(cat "/proc/$SERVER_PID/comm") == nginx ]] || die "pid $SERVER_PID is not nginx"
  mapfile -t NGINX_WORKERS < <(pgrep -P "$SERVER_PID")
  [[ ${#NGINX_WORKERS[@]} -ge 1 ]] || die "no nginx worker"
}

# start_linkgate hyper|axum MAPFILE CLICKFILE LOGFILE KEY (a key of the map) [MORE FLAGS...]
start_linkgate() {
  rm -f "$3"
  PROBES=0
  RUST_LOG=info nice -n "$NICE" taskset -c "$SERVER_CPU" "$TMP/bin/$1" --threads 1 --links "$2" --clicks "$3" \
    --listen "127.0.0.1:$PORT" --prefix /go/ --unknown redirect "${@:6}" >"$4" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  if ! wait_ready "$SERVER_PID" 300 "$5"; then
    tail -5 "$4" >&2 || true
    die "linkgate $1 did not come up"
  fi
  [[ $(cat "/proc/$SERVER_PID/comm") == "$1" ]] || die "pid $SERVER_PID is not $1"
}

# busy total steal (clock ticks) of CPU $1 from /proc/stat: what the server's CPU did in all.
cpu_line() {
  awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; t = 0; for (i = 2; i <= NF; i++) t += $i; print b, t, $9 }' /proc/stat
}

# utime stime (clock ticks) summed over the given pids (all threads of each).
cpu_ticks() {
  local p s f u=0 k=0
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    read -ra f <<<"$s"
    u=$((u + f[11])) # field 14 (1-based, counting pid and comm)
    k=$((k + f[12])) # field 15
  done
  echo "$u $k"
}
# utime stime of the threads of $1 whose name is $2.
thread_ticks() {
  local t s f u=0 k=0
  for t in /proc/"$1"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == "$2" ]] || continue
    s=$(cat "$t/stat" 2>/dev/null) || continue
    s=${s##*) }
    read -ra f <<<"$s"
    u=$((u + f[11]))
    k=$((k + f[12]))
  done
  echo "$u $k"
}

# CPU time (user+sys, s) of this shell's reaped children so far, into the variable named $1. The
# `times` builtin must run in this shell (a subshell's children are its own): hence the file.
children_cpu_to() {
  times >"$TMP/times.txt"
  printf -v "$1" '%s' "$(awk 'NR==2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.3f", s }' "$TMP/times.txt")"
}

declare -A W
# start_wrk DURATION OUTFILE KEYSFILE: wrk in the background, its pid in WRK_PID.
start_wrk() {
  nice -n "$NICE" taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"$1" --timeout 5s --latency \
    -s "$HERE/random_keys.lua" "$BASE" -- "$3" "$RANDOM" >"$2" 2>&1 &
  WRK_PID=$!
  PIDS+=("$WRK_PID")
}
# Waits until wrk (WRK_PID) has all its connections open: with a 1M-key file its Lua `init`
# takes seconds, and the load starts only then.
wait_load() {
  local start=$SECONDS n
  while alive "$WRK_PID"; do
    n=$(ss -tnH state established "( sport = :$PORT )" 2>/dev/null | wc -l)
    (( n >= CONNECTIONS )) && return 0
    (( SECONDS - start < 120 )) || die "wrk did not open its connections within 120 s"
    sleep 0.05
  done
  die "wrk exited before the load started: $(tail -3 "$1" 2>/dev/null)"
}

# run_wrk DURATION OUTFILE KEYSFILE -> fills W[...] from the WRKSTAT line. wrk runs in the
# background and is waited for, so that SIGTERM/SIGINT reach the cleanup at once.
run_wrk() {
  start_wrk "$@"
  wait "$WRK_PID" || true
  forget "$WRK_PID"
  parse_wrk "$2"
}
parse_wrk() {
  local kv line
  W=()
  line=$(grep '^WRKSTAT ' "$1" || true)
  [[ -n $line ]] || { tail -20 "$1" >&2; die "wrk failed (see above)"; }
  for kv in ${line#WRKSTAT }; do W[${kv%%=*}]=${kv#*=}; done
}
wrk_line() { # the WRKSTAT values as key=value
  local k out=""
  for k in requests duration_us bytes connect read write status timeout p50_us p90_us p99_us p999_us max_us mean_us; do
    out+=" $k=${W[$k]}"
  done
  echo "$out"
}

RESULTS=$TMP/results.txt
CHECKS=$TMP/checks.txt
META=$TMP/meta.txt
: >"$RESULTS"
: >"$CHECKS"
check() { # round server ok|FAIL message...
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${*:4}" >>"$CHECKS"
  [[ $3 == ok ]] || log "CHECK FAILED ($2, round $1): ${*:4}"
}

# Last `clicks: recorded N, delivered N, dropped N, failed N, in flight N` of a log -> C[...]
declare -A C
parse_clicks() {
  local line
  C=()
  line=$(grep -a 'clicks: recorded' "$1" | tail -1 || true)
  [[ -n $line ]] || return 1
  C[recorded]=$(sed -E 's/.*recorded ([0-9]+).*/\1/' <<<"$line")
  C[delivered]=$(sed -E 's/.*delivered ([0-9]+).*/\1/' <<<"$line")
  C[dropped]=$(sed -E 's/.*dropped ([0-9]+).*/\1/' <<<"$line")
  C[failed]=$(sed -E 's/.*failed ([0-9]+).*/\1/' <<<"$line")
  C[in_flight]=$(sed -E 's/.*in flight ([0-9]+).*/\1/' <<<"$line")
}

# Stops linkgate and checks its clicks: file lines = recorded = delivered, nothing dropped, every
# click matched, and recorded - requests sent in [0, in-flight slack] (requests wrk sent but did
# not count when its time was up). A server named *-noclicks (started with --no-clicks) must
# instead have recorded nothing and written no file. $1 round, $2 server, $3 clicks file, $4 log,
# $5 requests sent, $6 number of wrk runs.
stop_and_check_linkgate() {
  local round=$1 name=$2 clicks=$3 logf=$4 sent=$5 runs=$6 rc=0 lines unmatched extra
  stop_pid "$SERVER_PID" 30 || rc=$?
  SERVER_PID=""
  [[ $rc -eq 0 ]] || check "$round" "$name" FAIL "server exit status $rc"
  if ! parse_clicks "$logf"; then
    check "$round" "$name" FAIL "no final 'clicks:' line in the log"
    CLICK_FIELDS=" clicks_ok=0"
    return 0
  fi
  if [[ $name == *-noclicks ]]; then # started with --no-clicks: nothing recorded, no file
    if (( C[recorded] == 0 && C[dropped] == 0 )) && [[ ! -e $clicks ]]; then
      check "$round" "$name" ok "--no-clicks: recorded 0, no click file"
    else
      check "$round" "$name" FAIL "--no-clicks: recorded ${C[recorded]}, dropped ${C[dropped]}, click file $([[ -e $clicks ]] && echo exists || echo absent)"
    fi
    CLICK_FIELDS=""
    return 0
  fi
  lines=$(wc -l <"$clicks")
  unmatched=$(grep -c '"matched":false' "$clicks" || true)
  extra=$((C[recorded] - sent))
  local ok=ok
  (( lines == C[recorded] && C[delivered] == C[recorded] && C[dropped] == 0 && C[failed] == 0 && C[in_flight] == 0 )) || ok=FAIL
  (( unmatched == 0 )) || ok=FAIL
  (( extra >= 0 && extra <= runs * CONNECTIONS )) || ok=FAIL
  check "$round" "$name" "$ok" "click file $lines lines; recorded ${C[recorded]}, delivered ${C[delivered]}, dropped ${C[dropped]}, failed ${C[failed]}, in flight ${C[in_flight]}; requests counted by wrk+probes $sent (recorded - requests = $extra, allowed 0..$((runs * CONNECTIONS))); unmatched $unmatched"
  CLICK_FIELDS=" clicks_ok=$([[ $ok == ok ]] && echo 1 || echo 0) clicks_recorded=${C[recorded]} click_lines=$lines clicks_dropped=${C[dropped]} sent=$sent"
  (( unmatched == 0 )) || grep '"matched":false' "$clicks" | head -20 >"$TMP/logs/unmatched-$name-$round.jsonl"
  rm -f "$clicks"
}

stop_and_check_nginx() { # round name sent runs
  local dir=$TMP/nginx-$2 rc=0 lines extra
  stop_pid "$SERVER_PID" 30 || rc=$?
  SERVER_PID=""
  NGINX_WORKERS=()
  [[ $rc -eq 0 ]] || check "$1" "$2" FAIL "nginx exit status $rc"
  CLICK_FIELDS=""
  if [[ -f $dir/access.log ]]; then
    lines=$(wc -l <"$dir/access.log")
    extra=$((lines - $3))
    if (( extra >= 0 && extra <= $4 * CONNECTIONS )); then
      check "$1" "$2" ok "access.log $lines lines for $3 requests counted by wrk+probes"
    else
      check "$1" "$2" FAIL "access.log $lines lines for $3 requests counted by wrk+probes"
    fi
    CLICK_FIELDS=" click_lines=$lines sent=$3"
    rm -f "$dir/access.log"
  fi
}

# ---------------------------------------------------------------------------------------------
# Wait for other benchmarks (they would share the CPUs).
# The brief's pattern was (resolve|memory|record); every bench in benches/*.rs is included, and
# cargo-fuzz runs (a fuzzer keeps a core busy as much as a bench does).
BENCH_NAMES=$(cd "$ROOT/benches" && ls ./*.rs 2>/dev/null | sed 's|^\./||; s|\.rs$||' | paste -sd'|' -)
OTHER_PATTERN="target/release/deps/(${BENCH_NAMES:-resolve|memory|record})-|fuzz/target/[^ ]*/release/[^ ]* -artifact_prefix"
waited=0
WAIT_NOTE="no other benchmark running at start"
while pgrep -f "$OTHER_PATTERN" >/dev/null; do
  if (( waited >= WAIT_MAX )); then
    WAIT_NOTE="another benchmark was still running after waiting ${waited}s: went ahead anyway"
    log "$WAIT_NOTE"
    break
  fi
  log "another benchmark is running ($(pgrep -af "$OTHER_PATTERN" | head -1 | cut -c1-100)); waiting ${WAIT_POLL}s"
  sleep "$WAIT_POLL"
  waited=$((waited + WAIT_POLL))
  WAIT_NOTE="waited ${waited}s for another benchmark to finish"
done

busy_note() { # the busiest other processes right now
  ps -eo pcpu=,comm= --sort=-pcpu | awk -v me="$$" 'NR<=4 && $1 > 5 { printf "%s%s %s%%", sep, $2, $1; sep=", " }'
}
{
  echo "command=$COMMAND_LINE"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -n $(git -C "$ROOT" status --porcelain -- src examples Cargo.toml 2>/dev/null) ]] && echo ' (src/examples with uncommitted changes)')"
  echo "machine=$NCPU shared cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); server pinned to CPU$SERVER_CPU, wrk to CPU$WRK_CPU (both at nice $NICE)"
  echo "nginx=$("$NGINX" -v 2>&1 | sed 's/.*: //')"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "rounds=$ROUNDS"
  echo "duration=$DURATION"
  echo "connections=$CONNECTIONS"
  echo "warmup=$WARMUP"
  echo "links=$LINKS"
  echo "reload_links=$RELOAD_LINKS"
  echo "reload_duration=$RELOAD_DURATION"
  echo "clk_tck=$CLK_TCK"
  echo "wait=$WAIT_NOTE"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg); busy: $(busy_note)"
} >"$META"

# ---------------------------------------------------------------------------------------------
# 3. Rounds: nginx, nginx-nolog, hyper, axum, nginx, ...
log "rounds: $ROUNDS x (${SERVERS[*]}), $DURATION each after a $WARMUP warm-up, $CONNECTIONS connections, port $PORT"
for round in $(seq 1 "$ROUNDS"); do
  for name in "${SERVERS[@]}"; do
    case $name in
      nginx) start_nginx "$name" "$MAP" on "$FIRST_KEY" ;;
      nginx-nolog) start_nginx "$name" "$MAP" off "$FIRST_KEY" ;;
      hyper | axum) start_linkgate "$name" "$MAP" "$TMP/clicks.jsonl" "$TMP/logs/$name-$round.log" "$FIRST_KEY" ;;
      hyper-noclicks) start_linkgate hyper "$MAP" "$TMP/clicks.jsonl" "$TMP/logs/$name-$round.log" "$FIRST_KEY" --no-clicks ;;
    esac
    probe "$FIRST_KEY" "$FIRST_TARGET" || check "$round" "$name" FAIL "wrong redirect for $FIRST_KEY"
    run_wrk "$WARMUP" "$TMP/wrk/$name-$round-warmup.txt" "$KEYS"
    sent=$((PROBES + W[requests]))
    if [[ $name == nginx* ]]; then pids=("$SERVER_PID" "${NGINX_WORKERS[@]}"); else pids=("$SERVER_PID"); fi
    read -r u0 s0 < <(cpu_ticks "${pids[@]}")
    read -r du0 ds0 < <(thread_ticks "$SERVER_PID" linkgate-drain)
    children_cpu_to c0
    read -r cb0 ct0 cs0 < <(cpu_line "$SERVER_CPU")
    run_wrk "$DURATION" "$TMP/wrk/$name-$round.txt" "$KEYS"
    read -r cb1 ct1 cs1 < <(cpu_line "$SERVER_CPU")
    children_cpu_to c1
    read -r u1 s1 < <(cpu_ticks "${pids[@]}")
    read -r du1 ds1 < <(thread_ticks "$SERVER_PID" linkgate-drain)
    sent=$((sent + W[requests]))
    # shellcheck disable=SC2154 # c0 and c1 are set by children_cpu_to (printf -v)
    line="kind=main round=$round server=$name$(wrk_line) utime=$((u1 - u0)) stime=$((s1 - s0)) cpu_busy=$((cb1 - cb0)) cpu_total=$((ct1 - ct0)) cpu_steal=$((cs1 - cs0)) wrk_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.3f", b-a}')"
    if [[ $name == nginx* ]]; then
      stop_and_check_nginx "$round" "$name" "$sent" 2
    else
      line+=" drain_utime=$((du1 - du0)) drain_stime=$((ds1 - ds0))"
      stop_and_check_linkgate "$round" "$name" "$TMP/clicks.jsonl" "$TMP/logs/$name-$round.log" "$sent" 2
    fi
    echo "$line$CLICK_FIELDS" >>"$RESULTS"
    log "round $round $name: $(awk -v r="${W[requests]}" -v d="${W[duration_us]}" 'BEGIN{printf "%.0f req/s", r/(d/1e6)}'), p99 ${W[p99_us]} us, server CPU $(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v r="${W[requests]}" -v t="$CLK_TCK" 'BEGIN{printf "%.2f us user + %.2f us sys per request", u/t/r*1e6, s/t/r*1e6}')"
  done
done

# ---------------------------------------------------------------------------------------------
# 4. Reload under load, 1M links.
RMAP_A=$TMP/reload/a.map
RMAP_B=$TMP/reload/b.map
LIVE=$TMP/reload/links.map
RKEYS=$TMP/keys-reload.txt
log "generating two $RELOAD_LINKS-link maps (same keys, every target different)"
python3 "$HERE/gen_map.py" "$RELOAD_LINKS" "$RMAP_A" --keys "$RKEYS" --seed 7 --variant x
sleep 1.1 # different mtimes for the two files
python3 "$HERE/gen_map.py" "$RELOAD_LINKS" "$RMAP_B" --seed 7 --variant y
R_FIRST_KEY=$(head -1 "$RKEYS")
R_TARGET_A=$(sed -n '3{s/^ *[^ ]* //;s/;$//;p;q}' "$RMAP_A")
R_TARGET_B=$(sed -n '3{s/^ *[^ ]* //;s/;$//;p;q}' "$RMAP_B")

# Swaps the live map between A and B every RELOAD_EVERY s (hard link + atomic rename: no copy
# competes for the CPUs), or sends SIGHUP; logs each swap's time.
reload_loop() { # server-pid swaps-file
  local i=0 src
  trap 'exit 0' TERM
  while :; do
    sleep "$RELOAD_EVERY"
    if [[ $RELOAD_MODE == mv ]]; then
      if (( i % 2 == 0 )); then src=$RMAP_B; else src=$RMAP_A; fi
      ln -f "$src" "$LIVE.tmp"
      mv -f "$LIVE.tmp" "$LIVE"
    else
      kill -HUP "$1"
    fi
    i=$((i + 1))
    echo "$(date +%s.%N) $i" >>"$2"
  done
}

ln -f "$RMAP_A" "$LIVE"
RLOG=$TMP/logs/hyper-reload.log
log "reload: starting linkgate-hyper with $RELOAD_LINKS links"
t0=$SECONDS
start_linkgate hyper "$LIVE" "$TMP/clicks-reload.jsonl" "$RLOG" "$R_FIRST_KEY"
startup_s=$((SECONDS - t0))
probe "$R_FIRST_KEY" "$R_TARGET_A" || check reload hyper FAIL "wrong redirect before reloads"
run_wrk "$WARMUP" "$TMP/wrk/reload-hyper-warmup.txt" "$RKEYS"
sent=$((PROBES + W[requests]))
p0=$PROBES
log "reload: baseline ${RELOAD_DURATION} without reloads"
start_wrk "$RELOAD_DURATION" "$TMP/wrk/reload-hyper-base.txt" "$RKEYS"
wait_load "$TMP/wrk/reload-hyper-base.txt"
read -r u0 s0 < <(cpu_ticks "$SERVER_PID")
wait "$WRK_PID" || true
forget "$WRK_PID"
read -r u1 s1 < <(cpu_ticks "$SERVER_PID")
parse_wrk "$TMP/wrk/reload-hyper-base.txt"
sent=$((sent + W[requests]))
echo "kind=reload server=hyper phase=base$(wrk_line) utime=$((u1 - u0)) stime=$((s1 - s0)) startup_s=$startup_s" >>"$RESULTS"
reloads_before=$(grep -ac 'reloaded ' "$RLOG" || true)
log "reload: ${RELOAD_DURATION} with a map swap ($RELOAD_MODE) every ${RELOAD_EVERY}s"
SWAPS=$TMP/reload/swaps.txt
: >"$SWAPS"
start_wrk "$RELOAD_DURATION" "$TMP/wrk/reload-hyper-reload.txt" "$RKEYS"
wait_load "$TMP/wrk/reload-hyper-reload.txt"
read -r u0 s0 < <(cpu_ticks "$SERVER_PID")
read -r ru0 rs0 < <(thread_ticks "$SERVER_PID" linkgate-reload)
reload_loop "$SERVER_PID" "$SWAPS" &
LOOP_PID=$!
PIDS+=("$LOOP_PID")
taskset -pc "$WRK_CPU" "$LOOP_PID" >/dev/null
wait "$WRK_PID" || true
forget "$WRK_PID"
stop_pid "$LOOP_PID" 5 || true
read -r u1 s1 < <(cpu_ticks "$SERVER_PID")
parse_wrk "$TMP/wrk/reload-hyper-reload.txt"
sent=$((sent + W[requests]))
swaps=$(wc -l <"$SWAPS")
read -r ru1 rs1 < <(thread_ticks "$SERVER_PID" linkgate-reload)
reloads=$(( $(grep -ac 'reloaded ' "$RLOG" || true) - reloads_before ))
# The last swap must land: poll until the live file's target is served (up to 120 s).
if cmp -s "$LIVE" "$RMAP_B"; then want=$R_TARGET_B; else want=$R_TARGET_A; fi
t0=$SECONDS
until probe "$R_FIRST_KEY" "$want" 2>/dev/null; do
  if (( SECONDS - t0 > 120 )); then check reload hyper FAIL "120 s after the last swap the live file's target is still not served"; break; fi
  sleep 0.5
done
# One reload of the whole map on an idle server: its wall time (swap -> `reloaded` logged) and
# the reload thread's CPU.
sleep 1
if cmp -s "$LIVE" "$RMAP_B"; then src=$RMAP_A; else src=$RMAP_B; fi
n0=$(grep -ac 'reloaded ' "$RLOG" || true)
read -r iu0 is0 < <(thread_ticks "$SERVER_PID" linkgate-reload)
ti0=$(date +%s.%N)
ln -f "$src" "$LIVE.tmp" && mv -f "$LIVE.tmp" "$LIVE"
idle_s=-1
while (( $(awk -v a="$ti0" -v b="$(date +%s.%N)" 'BEGIN{print (b-a < 120)}') )); do
  if (( $(grep -ac 'reloaded ' "$RLOG" || true) > n0 )); then
    idle_s=$(awk -v a="$ti0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    break
  fi
  sleep 0.05
done
read -r iu1 is1 < <(thread_ticks "$SERVER_PID" linkgate-reload)
reload_fail=$(grep -ac 'reload of .* failed' "$RLOG" || true)
rss_kb=$(awk '/^VmRSS/{print $2}' "/proc/$SERVER_PID/status")
hwm_kb=$(awk '/^VmHWM/{print $2}' "/proc/$SERVER_PID/status")
echo "kind=reload server=hyper phase=reload$(wrk_line) utime=$((u1 - u0)) stime=$((s1 - s0)) swaps=$swaps reloads=$reloads reload_failed=$reload_fail reload_utime=$((ru1 - ru0)) reload_stime=$((rs1 - rs0)) idle_reload_s=$idle_s idle_reload_ticks=$((iu1 - iu0 + is1 - is0)) rss_kb=$rss_kb hwm_kb=$hwm_kb mode=$RELOAD_MODE every=$RELOAD_EVERY" >>"$RESULTS"
stop_and_check_linkgate reload hyper "$TMP/clicks-reload.jsonl" "$RLOG" "$((sent + PROBES - p0))" 3
cp "$SWAPS" "$TMP/logs/swaps.txt"

if [[ $NGINX_RELOAD == 1 ]]; then
  ln -f "$RMAP_A" "$LIVE"
  log "reload: starting nginx with $RELOAD_LINKS links"
  t0=$SECONDS
  start_nginx reload "$LIVE" on "$R_FIRST_KEY"
  startup_s=$((SECONDS - t0))
  run_wrk "$WARMUP" "$TMP/wrk/reload-nginx-warmup.txt" "$RKEYS"
  log "reload: nginx baseline ${RELOAD_DURATION}"
  run_wrk "$RELOAD_DURATION" "$TMP/wrk/reload-nginx-base.txt" "$RKEYS"
  echo "kind=reload server=nginx phase=base$(wrk_line) startup_s=$startup_s" >>"$RESULTS"
  log "reload: nginx ${RELOAD_DURATION} with one SIGHUP (new map) after 1 s"
  old_workers=("${NGINX_WORKERS[@]}")
  start_wrk "$RELOAD_DURATION" "$TMP/wrk/reload-nginx-reload.txt" "$RKEYS"
  wait_load "$TMP/wrk/reload-nginx-reload.txt"
  sleep 1
  ln -f "$RMAP_B" "$LIVE.tmp" && mv -f "$LIVE.tmp" "$LIVE"
  read -r mu0 ms0 < <(cpu_ticks "$SERVER_PID")
  thup=$(date +%s.%N)
  kill -HUP "$SERVER_PID"
  # The reload is done when a new worker runs (the master parsed the new config). Under load
  # that can take longer than the wrk run: keep looking up to 120 s after the SIGHUP.
  new_at=""
  t0=$SECONDS
  while (( SECONDS - t0 < 120 )); do
    mapfile -t cur < <(pgrep -P "$SERVER_PID")
    for w in "${cur[@]}"; do
      if [[ ! " ${old_workers[*]} " == *" $w "* ]] && [[ $(cat "/proc/$w/cmdline" 2>/dev/null | tr '\0' ' ') == *worker* ]]; then
        [[ -n $new_at ]] || new_at=$(date +%s.%N)
        NGINX_WORKERS+=("$w")
      fi
    done
    [[ -n $new_at ]] && break
    sleep 0.05
  done
  # The master alone (the workers are other pids): its CPU is the reload's parse.
  read -r mu1 ms1 < <(cpu_ticks "$SERVER_PID")
  in_window=$(alive "$WRK_PID" && echo 1 || echo 0)
  wait "$WRK_PID" || true
  forget "$WRK_PID"
  parse_wrk "$TMP/wrk/reload-nginx-reload.txt"
  reload_s=$( [[ -n $new_at ]] && awk -v a="$thup" -v b="$new_at" 'BEGIN{printf "%.2f", b-a}' || echo "-1")
  echo "kind=reload server=nginx phase=reload$(wrk_line) swaps=1 reloads=$([[ -n $new_at ]] && echo 1 || echo 0) reload_s=$reload_s switched_in_window=$in_window master_utime=$((mu1 - mu0)) master_stime=$((ms1 - ms0))" >>"$RESULTS"
  if [[ -n $new_at ]]; then
    probe "$R_FIRST_KEY" "$R_TARGET_B" || check reload nginx FAIL "after the reload nginx does not serve the new map"
  fi
  stop_pid "$SERVER_PID" 30 || true
  SERVER_PID=""
  NGINX_WORKERS=()
else
  echo "kind=reload server=nginx phase=skipped" >>"$RESULTS"
fi
rm -f "$RMAP_A" "$RMAP_B" "$LIVE" "$RKEYS"

# ---------------------------------------------------------------------------------------------
# 5. perf profile of linkgate-hyper under load.
PERF_DIR=$TMP/perf
mkdir -p "$PERF_DIR"
if [[ $PERF_OK == 1 ]]; then
  log "perf: recording linkgate-hyper for ${PERF_SECONDS}s under load"
  start_linkgate hyper "$MAP" "$TMP/clicks-perf.jsonl" "$TMP/logs/hyper-perf.log" "$FIRST_KEY"
  run_wrk "$WARMUP" "$TMP/wrk/perf-warmup.txt" "$KEYS"
  start_wrk "$((PERF_SECONDS + 3))s" "$TMP/wrk/perf.txt" "$KEYS"
  wait_load "$TMP/wrk/perf.txt"
  sleep 1
  # perf on the wrk CPU: its own cost stays off the server's CPU.
  taskset -c "$WRK_CPU" perf record -e cpu-clock -g -p "$SERVER_PID" -o "$TMP/perf.data" -- sleep "$PERF_SECONDS" >"$PERF_DIR/record.log" 2>&1 || true
  wait "$WRK_PID" || true
  forget "$WRK_PID"
  stop_pid "$SERVER_PID" 30 || true
  SERVER_PID=""
  rm -f "$TMP/clicks-perf.jsonl"
  if [[ -s $TMP/perf.data ]]; then
    perf report -i "$TMP/perf.data" --no-children --sort symbol -g none --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^[[:space:]]*$' | sed -E 's/([[:space:]]+-)+[[:space:]]*$//; s/[[:space:]]+$//' | head -40 >"$PERF_DIR/top.txt" || true
    perf report -i "$TMP/perf.data" --no-children --sort comm -g none --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^[[:space:]]*$' | sed -E 's/([[:space:]]+-)+[[:space:]]*$//; s/[[:space:]]+$//' | head -10 >"$PERF_DIR/threads.txt" || true
    perf report -i "$TMP/perf.data" --no-children --sort dso -g none --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^[[:space:]]*$' | sed -E 's/([[:space:]]+-)+[[:space:]]*$//; s/[[:space:]]+$//' | head -10 >"$PERF_DIR/dso.txt" || true
    perf report -i "$TMP/perf.data" --no-children --sort comm,symbol -g none --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^[[:space:]]*$' | sed -E 's/([[:space:]]+-)+[[:space:]]*$//; s/[[:space:]]+$//' | head -200 >"$PERF_DIR/comm_symbol.txt" || true
    echo "perf=cpu-clock sampling (hardware counters: ${PERF_HW:-?}), ${PERF_SECONDS}s, perf $(perf --version | awk '{print $3}')" >>"$META"
  fi
else
  echo "perf=not available" >>"$META"
fi

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg); busy: $(busy_note)" >>"$META"

# ---------------------------------------------------------------------------------------------
# 6. Report.
REPORT=$TMP/report.md
python3 "$HERE/report.py" "$TMP" >"$REPORT"
cat "$REPORT"
if [[ -n $BENCHMARKS_MD ]]; then
  python3 "$HERE/report.py" "$TMP" --append "$BENCHMARKS_MD"
  log "added to $BENCHMARKS_MD"
fi
if grep -q $'\tFAIL\t' "$CHECKS"; then
  log "some checks failed (see the report)"
  KEEP_TMP=1
  exit 2
fi
