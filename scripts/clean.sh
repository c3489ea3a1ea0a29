#!/usr/bin/env bash
# Remove every Docker resource the course created, by label. Base images, stand-ins
# and anything unlabelled (your own genai-data volume, say) are left alone.
set -uo pipefail
LABEL=org.genai-course.managed=true
if ! docker info >/dev/null 2>&1; then echo "clean: no Docker engine reachable; nothing to clean"; exit 0; fi
c=$(docker ps -aq --filter "label=$LABEL"); [ -n "$c" ] && docker rm -f $c >/dev/null
net=$(docker network ls -q --filter "label=$LABEL"); [ -n "$net" ] && docker network rm $net >/dev/null
vol=$(docker volume ls -q --filter "label=$LABEL"); [ -n "$vol" ] && docker volume rm -f $vol >/dev/null
img=$(docker images -q --filter "label=$LABEL" | sort -u); [ -n "$img" ] && docker rmi -f $img >/dev/null 2>&1
echo "clean: removed $(printf '%s' "$c" | grep -c .) containers, $(printf '%s' "$net" | grep -c .) networks, $(printf '%s' "$vol" | grep -c .) volumes, $(printf '%s' "$img" | grep -c .) images labelled $LABEL"
