#!/usr/bin/env bash
# HTTP load figures with wrk against a fresh `laurel serve` (release build, embedded log).
#
# Baseline in the same run: GET /healthz (the HTTP stack with no work behind it). Then
# ingest (POST /v1/events, BATCH events per request for random players, game-server token),
# the time the engine and views take to catch up with what was accepted, and player reads
# (GET /v1/players/me/achievements). wrk and laurel share this machine's cores.
#
# Settings: DURATION (20s), CONNECTIONS (32), THREADS (1), BATCH (100), PLAYERS (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
BATCH=${BATCH:-100}
PLAYERS=${PLAYERS:-10000}
PORT=${PORT:-18480}
URL=http://127.0.0.1:$PORT

cargo build --release -q -p laurel-gateway --bin laurel
L=target/release/laurel
DIR=$(mktemp -d)
LAUREL_LOG=warn $L serve --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" \
  --player-events-per-minute 0 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done

ADMIN=$($L token --data-dir "$DIR/data" --admin)
SERVER=$($L token --data-dir "$DIR/data" --server)
PLAYER=$($L token --data-dir "$DIR/data" --player p1)
put() { curl -sf -X PUT "$URL$1" -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "$2" >/dev/null; }
put /v1/admin/stats/kills '{"aggregation":"sum","kind":"int","client_writable":true}'
for i in $(seq 1 20); do
  put "/v1/admin/achievements/KILLS_$i" "{\"title\":\"Kills $i\",\"points\":$i,\"conditions\":[{\"stat\":\"kills\",\"at_least\":$((i * 50))}]}"
done

cat > "$DIR/ingest.lua" <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $SERVER"
wrk.headers["content-type"] = "application/json"
local bodies = {}
math.randomseed(7)
for b = 1, 64 do
  local events = {}
  for e = 1, $BATCH do
    events[e] = string.format('{"player_id":"p%d","stat":"kills","value":1}', math.random($PLAYERS))
  end
  bodies[b] = '{"events":[' .. table.concat(events, ",") .. ']}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/events", nil, bodies[(n % 64) + 1])
end
LUA
cat > "$DIR/read.lua" <<LUA
wrk.headers["authorization"] = "Bearer $PLAYER"
LUA

# Runs wrk, shows its report on stderr, prints its requests per second.
run() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" > "$DIR/wrk.out"
  cat "$DIR/wrk.out" >&2
  awk '/Requests\/sec/ {print $2}' "$DIR/wrk.out"
}
applied() { curl -sf "$URL/metrics" | awk '/^laurel_views_applied_stats_total/ {print $2}'; }

echo "== baseline: GET /healthz"
BASE=$(run "$URL/healthz")
echo "== ingest: POST /v1/events, $BATCH events per request"
INGEST=$(run -s "$DIR/ingest.lua" "$URL")
ACCEPTED=$(curl -sf "$URL/metrics" | awk '/^laurel_ingest_events_total\{outcome="accepted"\}/ {print $2}')
START=$(date +%s%N)
until [ "$(applied)" -ge "$ACCEPTED" ]; do sleep 0.1; done
DRAIN=$(awk -v ns=$(( $(date +%s%N) - START )) 'BEGIN { printf "%.1f", ns / 1e9 }')
echo "== reads: GET /v1/players/me/achievements"
READS=$(run -s "$DIR/read.lua" "$URL/v1/players/me/achievements")

SECS=${DURATION%s}
awk -v base="$BASE" -v ingest="$INGEST" -v batch="$BATCH" -v accepted="$ACCEPTED" \
    -v drain="$DRAIN" -v secs="$SECS" -v reads="$READS" 'BEGIN {
  printf "\nbaseline GET /healthz        %10.0f req/s\n", base
  printf "ingest                       %10.0f req/s = %.0f events/s accepted\n", ingest, ingest * batch
  printf "accepted events              %10d; views caught up %.1f s after the load stopped\n", accepted, drain
  printf "end to end (visible in views)%10.0f events/s\n", accepted / (secs + drain)
  printf "player reads                 %10.0f req/s (%.2fx baseline)\n", reads, reads / base
}'
