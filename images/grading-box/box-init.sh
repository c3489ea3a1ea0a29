#!/bin/sh
# The box's only moment as root: give the unprivileged user the tun device
# (slirp4netns needs it), apply the egress policy, then become `grader` for good,
# keeping in the bounding set only what newuidmap needs to start the inner engine.
set -eu
chmod 0666 /dev/net/tun
install -d -o grader -g grader -m 0700 /run/user/1000

# Egress: "public" (default) lets builds reach package indexes on the internet but
# not the host, its LAN or link-local metadata services; "open" allows everything
# (a proxy on a private address); "none" cuts the network.
policy=${BOX_EGRESS:-public}
allow() { iptables -w -A OUTPUT "$@" -j ACCEPT; }
case $policy in
  open) ;;
  public|none)
    allow -o lo
    allow -m conntrack --ctstate ESTABLISHED,RELATED
    if [ "$policy" = public ]; then
      # Docker's embedded DNS forwards from the box's namespace to the host's resolvers.
      allow -p udp --dport 53
      allow -p tcp --dport 53
      for net in 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 100.64.0.0/10 \
                 0.0.0.0/8 224.0.0.0/4 240.0.0.0/4 ${BOX_DENY_EXTRA:-}; do
        iptables -w -A OUTPUT -d "$net" -j REJECT
      done
      allow
    fi
    iptables -w -P OUTPUT DROP
    ip6tables -w -P OUTPUT DROP 2>/dev/null || true
    ip6tables -w -A OUTPUT -o lo -j ACCEPT 2>/dev/null || true
    ;;
  *) echo "box-init: unknown BOX_EGRESS=$policy (public, open or none)" >&2; exit 2 ;;
esac

exec setpriv --reuid=grader --regid=grader --init-groups --inh-caps=-all \
     --bounding-set=-all,+setuid,+setgid,+sys_admin,+setfcap,+dac_override,+fowner,+chown,+kill \
     -- /usr/local/bin/box-engine.sh
