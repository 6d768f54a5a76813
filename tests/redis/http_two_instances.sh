#!/usr/bin/env bash
# Usage: tests/redis/http_two_instances.sh SERVER_BINARY
#
# Two jobtrack_http_server processes sharing one Redis (REDIS_URL, as
# scripts/with-redis exports it), the way replicas behind a load balancer do:
#   - a job POSTed on A is read, listed, long-polled and cancelled on B;
#   - A is killed with SIGKILL mid-job: B reports the job FAILED, errorKind
#     "lost", once A's lease (1 s) has expired, and B's event stream says so.
# Needs the server's --redis-url, --instance-id and --lease-seconds options:
# without them (or without REDIS_URL, outside CI) it prints a SKIPPED line.
set -euo pipefail

server="${1:?usage: $0 SERVER_BINARY}"
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
if [[ -z "${REDIS_URL:-}" ]]; then
  [[ -z "${CI:-}" ]] || fail "REDIS_URL is not set (CI is set, so a missing Redis is a failure)"
  echo "SKIPPED: REDIS: REDIS_URL is not set; run through scripts/with-redis"
  exit 0
fi
if ! "$server" --help 2>&1 | grep -q -- '--redis-url'; then
  echo "SKIPPED: REDIS: $server has no --redis-url option"
  exit 0
fi
command -v curl >/dev/null || fail "curl not found"
command -v python3 >/dev/null || fail "python3 not found"

work="$(mktemp -d "${TMPDIR:-/tmp}/jobtrack-http-redis.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME: starts an instance; sets $url_NAME and $pid_NAME.
start() {
  local name="$1" i line=""
  # --time-scale 30: a hello job takes a minute, long enough to look at.
  "$server" --port 0 --redis-url "$REDIS_URL" --instance-id "http-$name" --lease-seconds 1 \
    --time-scale 30 >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  printf -v "pid_$name" '%s' "$pid"
  for ((i = 0; i < 300; i++)); do # a process start, bounded: 30 s
    line="$(grep -m1 '^listening on ' "$work/$name.out" || true)"
    [[ -z "$line" ]] || break
    kill -0 "$pid" 2>/dev/null || fail "instance $name exited: $(cat "$work/$name.err")"
    sleep 0.1
  done
  [[ -n "$line" ]] || fail "instance $name did not start"
  printf -v "url_$name" '%s' "${line#listening on }"
}

# json FIELD: prints FIELD of the JSON object on stdin ('' if absent).
json() { python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"; }

start a
start b
# shellcheck disable=SC2154 # set by start()
echo "A: $url_a (pid $pid_a)  B: $url_b"

post() { curl -fsS -X POST "$1/api/hello" -H 'Content-Type: application/json' -d '{"name":"john"}'; }

# --- a job of A, seen and cancelled through B --------------------------------
id1="$(post "$url_a" | json jobId)"
[[ -n "$id1" ]] || fail "POST on A gave no jobId"
# A writes to Redis right after the POST, asynchronously: allow it a moment.
status=""
for ((i = 0; i < 100; i++)); do
  status="$(curl -s -o "$work/get1.json" -w '%{http_code}' "$url_b/api/jobs/$id1")"
  [[ "$status" != 404 ]] && break
  sleep 0.1
done
[[ "$status" == 200 ]] || fail "GET of A's job on B answered $status"
curl -fsS "$url_b/api/jobs?name=hello:" | grep -q "$id1" || fail "B's list lacks A's job"
code="$(curl -s -o "$work/delete.json" -w '%{http_code}' -X DELETE "$url_b/api/jobs/$id1")"
[[ "$code" == 200 || "$code" == 202 ]] || fail "DELETE on B answered $code: $(cat "$work/delete.json")"
[[ "$(curl -fsS "$url_a/api/jobs/$id1" | json status)" == CANCELLED ]] || fail "A's job is not CANCELLED"
code="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url_b/api/jobs/$id1")"
[[ "$code" == 409 ]] || fail "second DELETE on B answered $code, not 409"
echo "ok: POST on A, GET/list/DELETE on B"

# --- A killed mid-job: B reports it lost --------------------------------------
id2="$(post "$url_a" | json jobId)"
for ((i = 0; i < 100; i++)); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url_b/api/jobs/$id2")" == 200 ]] && break
  sleep 0.1
done
curl -sN --max-time 60 "$url_b/api/jobs/$id2/events" >"$work/events.txt" &
events=$!
pids+=("$events")
kill -KILL "$pid_a"
after="$(curl -fsS "$url_b/api/jobs/$id2?wait=30")"
[[ "$(json status <<<"$after")" == FAILED ]] || fail "A's job on B after the kill: $after"
[[ "$(json errorKind <<<"$after")" == lost ]] || fail "A's job on B is not lost: $after"
wait "$events" 2>/dev/null || true
grep -q '"lost"' "$work/events.txt" || fail "B's event stream did not report the loss: $(cat "$work/events.txt")"
echo "ok: A killed, its job FAILED lost on B (long-poll and event stream)"
