#!/bin/sh
# Run a command where the inner engine lives (its user, network and mount
# namespaces: containers' addresses and published ports are local there),
# as that namespace's root, unable to gain privileges through set-uid files.
set -eu
pid=$(cat "$XDG_RUNTIME_DIR/docker.pid")
exec setpriv --no-new-privs nsenter --user --preserve-credentials --net --mount --target "$pid" -- "$@"
