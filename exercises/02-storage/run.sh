#!/usr/bin/env bash
# Exercise 02: start the embedding service with its storage (02-storage.ipynb explains each part).
# The grader runs `bash run.sh` in this folder with three variables set:
#   IMAGE       the service image to run
#   PORT        a free port on this machine to publish the service on
#   MODELS_DIR  the folder of the exported model on this machine
# To try it yourself from this folder:
#   IMAGE=genai-course/service:grader PORT=8000 MODELS_DIR="$(cd ../../models/all-MiniLM-L6-v2 && pwd)" bash run.sh
set -euo pipefail

# TODO: start a container named genai-storage from "$IMAGE", in the background, with
#   - the named volume genai-data at /data (the service keeps its documents there)
#   - a tmpfs at /cache
#   - "$MODELS_DIR" bind-mounted read-only at /models
#   - port 8000 published on 127.0.0.1:"$PORT" only
# run.sh must also work a second time, after `docker rm -f genai-storage`.
echo "run.sh: not written yet: replace the TODO with your docker commands" >&2
exit 1
