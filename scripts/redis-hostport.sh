#!/usr/bin/env bash
# Prints "HOST PORT" of a redis:// or rediss:// URL (defaults 127.0.0.1 6379).
url=${1:-redis://127.0.0.1:6379}
rest=${url#*://}
rest=${rest##*@}
hostport=${rest%%/*}
hostport=${hostport%%\?*}
host=${hostport%:*}
port=${hostport##*:}
[ "$host" = "$hostport" ] && port=6379
[ -n "$host" ] || host=127.0.0.1
echo "$host $port"
