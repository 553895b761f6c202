#!/bin/sh
# podman-pin-bridge.sh - fixes the MAC address of a podman bridge network, so that a container
# going away no longer cuts every other container off from the host for tens of seconds.
#
#   deploy/podman-pin-bridge.sh [NETWORK]     (default rtmp2sip_default; as root, after `up`)
#
# Why: a Linux bridge whose address nobody set takes the lowest MAC among its ports, so when the
# container holding that port stops (a drain, a scale-in, a crash), the bridge's MAC changes. The
# other containers still hold the old MAC for the gateway in their ARP caches; frames to it are no
# longer delivered to the host, and UDP senders never confirm the entry, so RTP towards peers on
# or behind the host (and SIP over UDP) is lost until each cache entry times out: 20 s and more
# here. netavark sets a fixed MAC itself from 1.9 on; Debian bookworm ships 1.4. Setting the
# bridge's address explicitly (to the one it has, so no cache goes stale) makes the kernel keep it.
#
# Run it once the network's first container is up (the bridge exists only then) and again
# whenever the network is created anew (`down` then `up`). A bridge already fixed is left alone.
# Exit status: 0 fixed (or already fixed), 1 no such network or bridge, 2 usage.
set -eu

NET=${1:-rtmp2sip_default}
[ $# -le 1 ] || { echo "usage: $0 [NETWORK]" >&2; exit 2; }

IF=$(podman network inspect "$NET" --format '{{.NetworkInterface}}' 2>/dev/null) || {
	echo "pin-bridge: no podman network '$NET' (podman network ls)" >&2
	exit 1
}
SYS=/sys/class/net/$IF
if [ -z "$IF" ] || [ ! -e "$SYS/address" ]; then
	echo "pin-bridge: network '$NET' has no bridge '$IF' yet: start a container on it first" >&2
	exit 1
fi
MAC=$(cat "$SYS/address")
# addr_assign_type 3 (NET_ADDR_SET): an address was set; the kernel no longer follows the ports.
if [ "$(cat "$SYS/addr_assign_type")" = 3 ]; then
	echo "pin-bridge: $IF ($NET) already has a fixed MAC $MAC"
	exit 0
fi
ip link set dev "$IF" address "$MAC"
if [ "$(cat "$SYS/addr_assign_type")" != 3 ]; then
	echo "pin-bridge: could not fix the MAC of $IF ($NET)" >&2
	exit 1
fi
echo "pin-bridge: $IF ($NET) MAC fixed at $MAC"
