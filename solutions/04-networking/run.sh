#!/usr/bin/env bash
# The service and a client on their own bridge network, where they find each other by
# name; a batch container with no network at all.
set -euo pipefail

docker network create --driver bridge genai-net >/dev/null

# --network at creation: the service never touches the default bridge.
docker run -d --name genai-service --network genai-net \
  --mount type=bind,source="$MODELS_DIR",target=/models,readonly \
  -p "127.0.0.1:${PORT}:8000" \
  "$IMAGE"

# The client only waits; `docker exec genai-client ...` reaches http://genai-service:8000.
docker run -d --name genai-client --network genai-net --entrypoint sleep "$IMAGE" infinity

# A batch job needs files, not a network.
docker run -d --name genai-batch --network none \
  --mount type=bind,source="$MODELS_DIR",target=/models,readonly \
  --entrypoint sleep "$IMAGE" infinity
