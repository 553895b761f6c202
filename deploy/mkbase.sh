#!/bin/bash
# mkbase.sh - make a Debian bookworm base image without a container registry: debootstrap
# (minbase) from the Debian archive this machine reaches, trimmed like debian:bookworm-slim, then
# `podman import`. For machines where docker.io cannot be pulled; build on it with
#   buildah bud --build-arg BASE_IMAGE=localhost/rtmp2sip-base:bookworm ...
#
#   deploy/mkbase.sh [IMAGE]          (default localhost/rtmp2sip-base:bookworm; needs root)
#
# The root file system is cached as a tarball (BASE_TAR, default /var/tmp/rtmp2sip-base.tar): a
# second run on the same machine only imports it (seconds instead of about a minute and a half).
# Environment: BASE_TAR, DEBIAN_MIRROR (default: the first deb.debian.org-like URI of apt's
# sources, else http://deb.debian.org/debian), ENGINE (podman).
set -euo pipefail

IMAGE=${1:-localhost/rtmp2sip-base:bookworm}
BASE_TAR=${BASE_TAR:-/var/tmp/rtmp2sip-base.tar}
ENGINE=${ENGINE:-podman}

die() {
	echo "mkbase: $*" >&2
	exit 1
}

mirror() {
	local m
	[[ -n ${DEBIAN_MIRROR:-} ]] && { echo "$DEBIAN_MIRROR"; return; }
	m=$(grep -hoE '^(URIs:|deb) *https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list \
		/etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '{ print $2; exit }')
	echo "${m:-http://deb.debian.org/debian}"
}

ROOTFS=""
trap '[[ -n $ROOTFS ]] && rm -rf "$ROOTFS"' EXIT

make_tar() {
	local root tmp m
	[[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
	command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
	m=$(mirror)
	root=$(mktemp -d /var/tmp/rtmp2sip-rootfs.XXXXXX)
	ROOTFS=$root
	echo "mkbase: debootstrap --variant=minbase bookworm from $m"
	debootstrap --variant=minbase bookworm "$root" "$m" >"$root.log" 2>&1 ||
		{ tail -n 20 "$root.log" >&2; rm -f "$root.log"; die "debootstrap failed"; }
	rm -f "$root.log"
	# What debian:bookworm-slim leaves out: docs, man pages, locales, apt caches and lists.
	cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
	EOF
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
		APT::Install-Recommends "false";
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
	EOF
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $m
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: ${m%/debian*}/debian-security
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
		"$root"/var/lib/apt/lists/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
		"$root"/var/log/*.log "$root"/var/log/apt/*
	find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	tmp="$BASE_TAR.tmp.$$"
	tar --numeric-owner -C "$root" -cf "$tmp" .
	mv "$tmp" "$BASE_TAR"
	echo "mkbase: cached the root file system in $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
}

[[ -s $BASE_TAR ]] || make_tar
"$ENGINE" import --change 'CMD ["bash"]' "$BASE_TAR" "$IMAGE" >/dev/null
echo "mkbase: $IMAGE imported from $BASE_TAR"
