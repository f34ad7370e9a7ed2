#!/usr/bin/env bash
# Usage: moto-server.sh start|stop|status [PORT]   (default port 5055, binds 127.0.0.1 only)
# Pid file and log: $GDR_CACHE (default ~/.cache/guardduty-responder)/moto-PORT.{pid,log}
set -euo pipefail

cmd="${1:-}"
port="${2:-5055}"
cache="${GDR_CACHE:-$HOME/.cache/guardduty-responder}"
pidfile="$cache/moto-$port.pid"
log="$cache/moto-$port.log"
url="http://127.0.0.1:$port"

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
ready() { [[ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url/moto-api/")" == 200 ]]; }

case "$cmd" in
  start)
    if running && ready; then echo "moto already running on $url (pid $(cat "$pidfile"))"; exit 0; fi
    if ready; then echo "port $port already serves moto without our pid file; refusing" >&2; exit 1; fi
    bin="$("$(dirname "$0")/moto-env.sh" | tail -n 1)"
    mkdir -p "$cache"
    nohup "$bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    echo $! >"$pidfile"
    deadline=$((SECONDS + 30))
    until ready || ((SECONDS >= deadline)); do
      running || { echo "moto_server exited; see $log:" >&2; tail -n 20 "$log" >&2; rm -f "$pidfile"; exit 1; }
      sleep 0.5
    done
    ready || { echo "moto_server not ready on $url after 30 s; see $log" >&2; "$0" stop "$port" >&2; exit 1; }
    # Warm-up: the first EC2 call loads the default AMIs (3-4 s). moto does not check
    # signatures, so a fake SigV4 header that names the service is enough to route it.
    curl -s -o /dev/null --max-time 30 "$url/" \
      -H 'Authorization: AWS4-HMAC-SHA256 Credential=AKIAWARMUP/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0' \
      --data 'Action=DescribeImages&Version=2016-11-15&Owner.1=amazon' ||
      echo "warning: EC2 warm-up call failed" >&2
    echo "moto running on $url (pid $(cat "$pidfile"), log $log)"
    ;;
  stop)
    if running; then
      pid="$(cat "$pidfile")"
      kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      echo "moto stopped (pid $pid)"
    else
      echo "moto not running on port $port"
    fi
    rm -f "$pidfile"
    ;;
  status)
    if running && ready; then echo "running on $url (pid $(cat "$pidfile"))"; else echo "not running on port $port"; exit 3; fi
    ;;
  *) echo "usage: $0 start|stop|status [PORT]" >&2; exit 2 ;;
esac
