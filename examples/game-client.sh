#!/bin/sh
# A minimal game-client loop against Laurel, with curl only: report stats after each round,
# then read the player's achievements back once the round is reflected (read-your-writes).
#
#   LAUREL_URL=http://127.0.0.1:8080 PLAYER_TOKEN=$(laurel token --player ann) \
#     examples/game-client.sh [ROUNDS]
#
# A real game keeps one HTTP connection, batches a round's events (up to 1,000) in one
# request, gives each event an `event_id` so that a retry after a timeout counts it once,
# and listens on GET /v1/players/me/notifications (Server-Sent Events) for unlocks.
set -eu
url=${LAUREL_URL:-http://127.0.0.1:8080}
token=${PLAYER_TOKEN:?set PLAYER_TOKEN to a player token (laurel token --player ID)}
rounds=${1:-3}

round=1
while [ "$round" -le "$rounds" ]; do
    # One round of play: 400 ore, 40 asteroids, a 120 s run.
    answer=$(curl -sf -X POST "$url/v1/events" \
        -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"events": [{"stat": "ore_mined", "value": 400},
                        {"stat": "asteroids_destroyed", "value": 40},
                        {"stat": "best_run_seconds", "value": 120}]}')
    # The answer carries a read-your-writes token: {"accepted":3,"duplicates":0,"token":"..."}
    read_token=$(printf '%s' "$answer" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
    echo "round $round: $answer"
    # Wait (bounded) until this round's events are reflected, then list what is earned.
    curl -sf "$url/v1/players/me/achievements?wait_for=$read_token" \
        -H "authorization: Bearer $token" |
        tr '{' '\n' | grep '"earned":true' | sed -n 's/.*"title":"\([^"]*\)".*/  earned: \1/p'
    round=$((round + 1))
done
