#!/usr/bin/env bash
# Exercise 04: a network for the service and its clients (04-networking.ipynb explains each part).
# The grader runs `bash run.sh` in this folder with three variables set:
#   IMAGE       the service image to run
#   PORT        a free port on this machine to publish the service on
#   MODELS_DIR  the folder of the exported model on this machine
# To try it yourself from this folder:
#   IMAGE=genai-course/service:grader PORT=8000 MODELS_DIR="$(cd ../../models/all-MiniLM-L6-v2 && pwd)" bash run.sh
set -euo pipefail

# TODO 1: create the user-defined bridge network genai-net.
# TODO 2: start genai-service from "$IMAGE" on genai-net only, with "$MODELS_DIR" mounted read-only at
#         /models and port 8000 published on 127.0.0.1:"$PORT".
# TODO 3: start genai-client from "$IMAGE" on genai-net with a long-running command (it only waits,
#         so that you can `docker exec` into it and call http://genai-service:8000).
# TODO 4: start genai-batch from "$IMAGE" with no network at all.
echo "run.sh: not written yet: replace the TODOs with your docker commands" >&2
exit 1
