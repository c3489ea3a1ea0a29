#!/usr/bin/env bash
# Put first on PATH while the grader runs a learner's run.sh: it adds the grading
# session's labels to every container, volume, network and image the script creates, so
# the grading can remove them afterwards, even ones with names it does not know.
# Everything else goes to the real docker unchanged.
real=${GENAI_GRADER_REAL_DOCKER:?}
labels=(--label "org.genai-course.managed=true" --label "org.genai-course.session=${GENAI_GRADER_SESSION:?}")
args=("$@")
i=0
# skip global options such as --context NAME or -H HOST to reach the command
while [ "$i" -lt "${#args[@]}" ] && [[ ${args[$i]} == -* ]]; do
  case ${args[$i]} in
    -H|--host|-c|--context|--config|-l|--log-level|--tlscacert|--tlscert|--tlskey) i=$((i + 2)) ;;
    *) i=$((i + 1)) ;;
  esac
done
command=${args[$i]:-}
sub=${args[$((i + 1))]:-}
at=-1
case $command in
  run|create|build) at=$((i + 1)) ;;
  container) [[ $sub == run || $sub == create ]] && at=$((i + 2)) ;;
  volume|network) [[ $sub == create ]] && at=$((i + 2)) ;;
  image|buildx|builder) [[ $sub == build ]] && at=$((i + 2)) ;;
esac
if [ "$at" -ge 0 ]; then
  exec "$real" "${args[@]:0:$at}" "${labels[@]}" "${args[@]:$at}"
fi
exec "$real" "$@"
