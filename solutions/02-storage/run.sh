#!/usr/bin/env bash
# The service with its storage: documents on a named volume, scratch space in memory,
# the model read-only, and the port reachable from this machine only.
set -euo pipefail

# Idempotent: on a second run the volume, and the documents on it, are kept.
docker volume create genai-data >/dev/null

docker run -d --name genai-storage \
  --mount type=volume,source=genai-data,target=/data \
  --tmpfs /cache \
  --mount type=bind,source="$MODELS_DIR",target=/models,readonly \
  -p "127.0.0.1:${PORT}:8000" \
  "$IMAGE"
