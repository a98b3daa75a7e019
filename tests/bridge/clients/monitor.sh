#!/usr/bin/env bash
# A cron-style health check of the kind operators write against the endpoint:
# one curl, fields read with jq -r, integer comparisons with [ -lt ] / [ -gt ].
# Alerts are printed; STATUS_URL points at the bridge.
set -u

page() { echo "PAGE: $*"; }
notify() { echo "NOTIFY: $*"; }

STATUS=$(curl -s "$STATUS_URL/api/celery-status")
CONNECTED=$(echo "$STATUS" | jq -r '.connected')
WORKERS=$(echo "$STATUS" | jq -r '.workers')
ACTIVE=$(echo "$STATUS" | jq -r '.active_tasks')

if [ "$CONNECTED" != "true" ]; then
  page "broker unreachable"
fi
if [ "$WORKERS" -lt "${MIN_WORKERS:-2}" ]; then
  notify "only $WORKERS workers"
fi
if [ "$ACTIVE" -gt "${MAX_ACTIVE:-100}" ]; then
  notify "$ACTIVE active tasks"
fi
echo "checked connected=$CONNECTED workers=$WORKERS active=$ACTIVE"
