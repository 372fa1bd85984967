#!/usr/bin/env bash
# Makes sure a Redis server answers at the given host:port, installing
# redis-server with apt-get and starting it when nothing answers.
# Usage: scripts/redis.sh HOST PORT
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-6379}

ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h "$host" -p "$port" ping 2>/dev/null | grep -q PONG
  else
    # No redis-cli: speak RESP over bash's /dev/tcp.
    { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    local reply
    read -r -t 2 reply <&3 || true
    exec 3>&- 3<&-
    [[ "$reply" == +PONG* ]]
  fi
}

if ping; then
  exit 0
fi

case "$host" in
  127.0.0.1|localhost|::1) ;;
  *) echo "redis.sh: nothing answers at $host:$port and it is not local; start Redis there or set REDIS_URL" >&2; exit 1 ;;
esac

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis.sh: installing redis-server with apt-get" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

dir=${TMPDIR:-/tmp}/cioq-redis-$port
mkdir -p "$dir"
echo "redis.sh: starting redis-server on $host:$port (data in $dir)" >&2
redis-server --daemonize yes --bind "$host" --port "$port" --dir "$dir" \
  --save "" --appendonly no --databases 256 --maxmemory-policy noeviction \
  --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"

for _ in $(seq 1 50); do
  if ping; then exit 0; fi
  sleep 0.1
done
echo "redis.sh: redis-server did not answer on $host:$port; see $dir/redis.log" >&2
exit 1
