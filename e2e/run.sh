#!/usr/bin/env bash
# The browser test of cioq (`make e2e`, run by CI too).
#
# Starts Redis (a server of its own on 127.0.0.1:6398, database 1, flushed),
# the Customer.io sandbox, a worker and `cioq serve` from a fresh build of
# cmd/cioq; enqueues an identify, a track event and a password reset email
# (delivered) and a broadcast trigger for a broadcast the sandbox does not
# know (404 → permanent → dead letter); then opens /dashboard in Debian's
# headless chromium with playwright-core (e2e/dashboard.test.mjs): 401 without
# credentials, the queues, the dead letter in the bulk queue's archived tab,
# its task page, the password reset's timeline page (found by its
# idempotency key through the page's form, delivered as the sandbox's
# reporting webhooks to serve said), and no email anywhere on the pages or in
# their API responses;
# its Content-Security-Policy, pausing and resuming a queue and deleting a
# scheduled task from the page (the UI's own requests pass the dashboard's
# checks), and a cross-site form that cannot pause a queue.
#
# On a fresh Debian machine, as root, it installs what is missing: chromium
# (apt-get), curl, and playwright-core (npm ci, pinned in package-lock.json;
# no browser download). Every process it starts is stopped on exit.
#
# Usage: e2e/run.sh [--update-screenshots]
#   Screenshots go to e2e/screenshots-tmp/ (ignored by git). With
#   --update-screenshots (or E2E_UPDATE_SCREENSHOTS=1) a passing run also
#   copies them to e2e/screenshots/, the images the README shows.
# Environment: E2E_REDIS (host:port, default 127.0.0.1:6398), E2E_REDIS_DB
# (default 1), CHROMIUM (default /usr/bin/chromium), GO (default go).
# Prints one line per check and ends with "e2e: N passed, M failed".
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

update=${E2E_UPDATE_SCREENSHOTS:-0}
for arg in "$@"; do
  case "$arg" in
    --update-screenshots) update=1 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "e2e: unknown argument $arg (see e2e/run.sh --help)" >&2; exit 2 ;;
  esac
done

GO=${GO:-go}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
redis_hostport=${E2E_REDIS:-127.0.0.1:6398}
redis_host=${redis_hostport%:*}
redis_port=${redis_hostport##*:}
redis_db=${E2E_REDIS_DB:-1}

# Whole run, once installed: well under 3 minutes. Each wait has its own
# deadline; this is the browser test's.
browser_timeout=${E2E_BROWSER_TIMEOUT:-150}

# The email every delivered task carries: it must never reach the dashboard.
secret_email="jane.e2e-$$@example.com"
dead_type="cio:broadcast_trigger"
unknown_broadcast=987654

passed=0
failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
die()  { echo "e2e: $*" >&2; fail "$*"; exit 1; }

# ---------------------------------------------------------------- cleanup

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cioq-e2e.XXXXXX")
pids=()
started_redis=0
finish() {
  local code=$?
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$started_redis" = 1 ]; then
    redis-cli -h "$redis_host" -p "$redis_port" shutdown nosave >/dev/null 2>&1
  fi
  if [ "$code" -ne 0 ] || [ "$failed" -ne 0 ]; then
    for f in "$tmp"/*.log; do
      [ -s "$f" ] || continue
      echo "---- last lines of $(basename "$f")"
      tail -n 25 "$f"
    done
  fi
  rm -rf "$tmp"
  echo "e2e: $passed passed, $failed failed"
  if [ "$code" -eq 0 ] && [ "$failed" -ne 0 ]; then code=1; fi
  exit "$code"
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup

apt_updated=0
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need $* (run as root, or install them: apt-get install -y $*)"
    sudo="sudo"
  fi
  if [ "$apt_updated" = 0 ]; then
    $sudo apt-get update -qq >/dev/null
    apt_updated=1
  fi
  echo "e2e: installing $* with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "$CHROMIUM" ]; then
  apt_install chromium
  [ -x "$CHROMIUM" ] || die "chromium is not at $CHROMIUM after apt-get install chromium"
fi
command -v curl >/dev/null 2>&1 || apt_install curl
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# playwright-core needs Node.js 20 or newer (Debian 12's own nodejs is 18).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || die "Node.js $(node -v 2>/dev/null) is too old: playwright-core needs Node.js 20 or newer (e.g. from NodeSource or Debian backports)"

if [ ! -f e2e/node_modules/playwright-core/package.json ]; then
  echo "e2e: npm ci (playwright-core; no browser download)" >&2
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in e2e/ failed"
fi

# A port nobody listens on now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_for DESC SECONDS CMD...: runs CMD until it succeeds or time is up.
wait_for() {
  local desc=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "$desc (not within ${secs}s)"
      return 1
    fi
    sleep 0.2
  done
  ok "$desc"
}

http_ok() { curl -fsS -m 2 -o /dev/null "$1"; }

# Redis: a server of its own, so the tests' server (6399) is never touched.
# Whether one answers already is asked before anything starts it (without
# redis-cli, over bash's /dev/tcp), so the trap stops only a server this
# run started.
redis_answers() {
  { exec 4<>"/dev/tcp/$redis_host/$redis_port"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&4
  local reply=""
  read -r -t 2 reply <&4 || true
  exec 4>&- 4<&-
  [[ "$reply" == +PONG* ]]
}
redis_answers || started_redis=1
./scripts/redis.sh "$redis_host" "$redis_port" || die "Redis did not start on $redis_hostport"
command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
redis-cli -h "$redis_host" -p "$redis_port" -n "$redis_db" flushdb >/dev/null
export REDIS_URL="redis://$redis_hostport/$redis_db"

# cmd/cioq, built fresh.
missing=""
for f in serve worker sandbox enqueue dlq; do
  grep -q "\"$f\"" cmd/cioq/main.go 2>/dev/null || missing="$missing $f"
done
[ -z "$missing" ] || die "cmd/cioq lacks the subcommand(s)$missing that this test drives"
if ! "$GO" build -o "$tmp/cioq" ./cmd/cioq 2>"$tmp/build.log"; then
  cat "$tmp/build.log" >&2
  die "go build ./cmd/cioq failed: the browser test needs cioq's serve, worker, sandbox, enqueue and dlq"
fi
cioq=$tmp/cioq
ok "cioq built"

# ---------------------------------------------------------------- services

sandbox_port=$(free_port)
sandbox="http://127.0.0.1:$sandbox_port"
serve_port=$(free_port)
while [ "$serve_port" = "$sandbox_port" ]; do serve_port=$(free_port); done
base="http://127.0.0.1:$serve_port"
# The sandbox reports each delivery to serve's receiver (signed with the
# same key), so the password reset's timeline ends delivered.
export CIOQ_WEBHOOK_SIGNING_KEY="e2e-webhook-key-$$"
"$cioq" sandbox --addr "127.0.0.1:$sandbox_port" --webhook-url "$base/v1/customerio/webhooks" >"$tmp/sandbox.log" 2>&1 &
pids+=($!)
wait_for "sandbox answers at $sandbox" 20 http_ok "$sandbox/_sandbox/info" || exit 1

export CUSTOMERIO_SITE_ID=sandbox-site
export CUSTOMERIO_TRACK_API_KEY=sandbox-track-key
export CUSTOMERIO_APP_API_KEY=sandbox-app-key
export CUSTOMERIO_PIPELINES_WRITE_KEY=sandbox-write-key
export CUSTOMERIO_TRACK_URL="$sandbox/track"
export CUSTOMERIO_APP_URL="$sandbox/app"
export CUSTOMERIO_PIPELINES_URL="$sandbox/cdp/v1"

admin_port=$(free_port)
while [ "$admin_port" = "$serve_port" ]; do admin_port=$(free_port); done
"$cioq" worker --concurrency 2 --admin-addr "127.0.0.1:$admin_port" >"$tmp/worker.log" 2>&1 &
pids+=($!)
wait_for "worker ready (admin port /readyz)" 30 http_ok "http://127.0.0.1:$admin_port/readyz" || exit 1

CIOQ_DASHBOARD_USER=e2e CIOQ_DASHBOARD_PASSWORD=e2e-secret \
  "$cioq" serve --addr "127.0.0.1:$serve_port" >"$tmp/serve.log" 2>&1 &
pids+=($!)
wait_for "serve ready at $base (/readyz)" 30 http_ok "$base/readyz" || exit 1

# ---------------------------------------------------------------- tasks

enqueue() {
  local typ=$1 payload=$2 out
  shift 2
  if ! out=$(printf '%s' "$payload" | "$cioq" enqueue "$typ" "$@" 2>&1); then
    fail "enqueue $typ: $out"
    return 1
  fi
  echo "$out" >>"$tmp/enqueue.log"
}
user_id="e2e-user-$$"
reset_key="reset:$user_id"
enqueued=1
enqueue cio:identify "{\"identifiers\":{\"id\":\"$user_id\"},\"attributes\":{\"email\":\"$secret_email\",\"plan\":\"pro\"}}" || enqueued=0
enqueue cio:track "{\"identifiers\":{\"id\":\"$user_id\"},\"name\":\"password_reset_requested\",\"data\":{\"email\":\"$secret_email\"}}" || enqueued=0
enqueue cio:send_email "{\"transactional_message_id\":\"password_reset\",\"to\":\"$secret_email\",\"identifiers\":{\"id\":\"$user_id\"},\"message_data\":{\"reset_link\":\"https://example.com/reset?token=e2e\"}}" --key "$reset_key" || enqueued=0
enqueue "$dead_type" "{\"broadcast_id\":$unknown_broadcast,\"emails\":[\"$secret_email\"]}" || enqueued=0
# A task the browser deletes from the default queue's scheduled tab.
enqueue cio:identify "{\"identifiers\":{\"id\":\"$user_id-later\"},\"attributes\":{\"email\":\"$secret_email\"}}" --in 1h || enqueued=0
[ "$enqueued" = 1 ] || exit 1
ok "enqueued an identify, a track event, a password reset email, a trigger of unknown broadcast $unknown_broadcast and an identify due in an hour"

sandbox_has() { curl -fsS -m 2 "$sandbox/_sandbox/$1" | grep -qF -- "$2"; }
delivered_all() {
  sandbox_has "people/$user_id" "\"plan\"" &&
    sandbox_has "people/$user_id/events" password_reset_requested &&
    sandbox_has deliveries password_reset
}
wait_for "the sandbox got the identify, the event and the email" 45 delivered_all || exit 1

reset_delivered() { "$cioq" status --key "$reset_key" 2>/dev/null | grep -qE '^State +delivered'; }
wait_for "cioq status --key shows the password reset delivered (the sandbox's reporting webhooks reached serve)" 45 reset_delivered || true

dead_lettered() { "$cioq" dlq list --type "$dead_type" --json 2>/dev/null | grep -qF "$dead_type"; }
wait_for "cioq dlq list shows the dead-lettered $dead_type" 45 dead_lettered || exit 1

dlq_out=$("$cioq" dlq list 2>&1; "$cioq" dlq export 2>&1 || true)
if grep -qiF "$secret_email" <<<"$dlq_out"; then
  fail "cioq dlq list/export print the payload's email without --payload"
else
  ok "cioq dlq list/export keep the payload's email redacted"
fi

metric_ge() { # URL NAME-REGEX MIN: some sample of the metric is >= MIN
  curl -fsS -m 2 "$1" | awk -v re="$2" -v min="$3" '$1 ~ re && $NF+0 >= min+0 { found=1 } END { exit !found }'
}
wait_for "serve's /metrics: cioq_dead_letters >= 1" 30 \
  metric_ge "$base/metrics" '^cioq_dead_letters$' 1 || true
wait_for "worker's /metrics: cioq_deliveries_total{outcome=\"delivered\"} counted" 10 \
  metric_ge "http://127.0.0.1:$admin_port/metrics" '^cioq_deliveries_total\{.*outcome="delivered"' 1 || true

# ---------------------------------------------------------------- browser

shots=e2e/screenshots-tmp
rm -rf "$shots"
mkdir -p "$shots"
set +e
E2E_BASE_URL="$base" E2E_USER=e2e E2E_PASSWORD=e2e-secret \
  E2E_SECRET_EMAIL="$secret_email" E2E_RESET_KEY="$reset_key" E2E_DEAD_TYPE="$dead_type" E2E_DEAD_QUEUE=bulk \
  E2E_SCREENSHOTS="$shots" E2E_LABEL=dashboard CHROMIUM="$CHROMIUM" \
  timeout -k 5 "$browser_timeout" node e2e/dashboard.test.mjs 2>&1 | tee "$tmp/browser.out"
node_rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^dashboard: [0-9]+ passed, [0-9]+ failed$' "$tmp/browser.out" | tail -n 1 || true)
if [ -n "$summary" ]; then
  read -r p f < <(sed -E 's/^dashboard: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$summary")
  passed=$((passed + p))
  failed=$((failed + f))
fi
if [ "$node_rc" -ne 0 ] && { [ -z "$summary" ] || [ "${f:-0}" -eq 0 ]; }; then
  if [ "$node_rc" -eq 124 ]; then
    fail "browser test did not finish within ${browser_timeout}s"
  else
    fail "browser test exited $node_rc"
  fi
fi

if [ "$failed" -eq 0 ] && [ "$update" = 1 ]; then
  mkdir -p e2e/screenshots
  cp "$shots"/*.png e2e/screenshots/
  echo "e2e: screenshots copied to e2e/screenshots/"
fi
