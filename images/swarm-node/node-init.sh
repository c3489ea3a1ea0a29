#!/bin/sh
# `node`: a Swarm node's engine; `registry`: the cluster's image registry.
set -eu
case "${1:-node}" in
  registry) mkdir -p /var/lib/docker-registry
            exec /usr/bin/docker-registry serve /etc/swarm-node/registry.yml ;;
  node)     # The engine makes a cgroup per container under this container's own (read-only
            # bind mounts by default); remounting them writable keeps them this container's subtree.
            for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done
            exec /usr/sbin/dockerd ;;
  *)        exec "$@" ;;
esac
