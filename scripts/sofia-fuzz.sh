#!/usr/bin/env bash
# sofia-fuzz.sh - builds sofia-sip from Debian's own source package as a static library
# instrumented for libFuzzer and AddressSanitizer, so that fuzz_sip_stream sees coverage inside
# the SIP parser (against the system's uninstrumented library it only sees its own harness).
# Used by `make fuzz`; the fuzz smoke of `make test` does not need it.
#
#   scripts/sofia-fuzz.sh [OUT_DIR]     (default build-fuzz/sofia)
#
# Writes OUT_DIR/libsofia-sip-ua.a and OUT_DIR/VERSION (the Debian version it was built from);
# does nothing when they exist and match the installed libsofia-sip-ua-dev. The source comes from
# the Debian archive through apt (a private deb-src list and private list/cache folders: the
# machine's apt configuration is not changed); Debian's patches are applied by dpkg-source.
# Needs clang, dpkg-dev, autoconf, automake and libtool (installed with apt-get when run as
# root and missing). About a minute on two cores.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build-fuzz/sofia}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"

die() {
	echo "sofia-fuzz: $*" >&2
	exit 1
}

version=$(dpkg-query -W -f='${Version}' libsofia-sip-ua-dev 2>/dev/null) ||
	die "libsofia-sip-ua-dev is not installed (make deps)"
if [[ -f $OUT/libsofia-sip-ua.a && $(cat "$OUT/VERSION" 2>/dev/null) == "$version" ]]; then
	echo "sofia-fuzz: $OUT/libsofia-sip-ua.a ($version) is up to date"
	exit 0
fi

need=()
for tool in clang:clang dpkg-source:dpkg-dev autoreconf:autoconf automake:automake \
	libtoolize:libtool; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [[ ${#need[@]} -gt 0 ]]; then
	[[ $(id -u) -eq 0 ]] || die "missing ${need[*]}: install them (as root: apt-get install ${need[*]})"
	echo "sofia-fuzz: apt-get install ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" ||
		die "could not install ${need[*]}"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sofia-fuzz.XXXXXX") || die "no temporary folder"
trap 'rm -rf "$WORK"' EXIT
codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
[[ -n $codename ]] || codename=bookworm
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/src"
cat >"$WORK/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $codename-security main
EOF
APT=(apt-get -q -o "Dir::Etc::SourceList=$WORK/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache" -o "APT::Sandbox::User=root")
echo "sofia-fuzz: fetching Debian's sofia-sip $version source"
"${APT[@]}" update >"$WORK/apt.log" 2>&1 || {
	tail -5 "$WORK/apt.log" >&2
	die "apt-get update of the deb-src list failed"
}
(cd "$WORK/src" && "${APT[@]}" source --download-only "sofia-sip=$version") >>"$WORK/apt.log" 2>&1 || {
	tail -5 "$WORK/apt.log" >&2
	die "apt-get source sofia-sip=$version failed"
}
dsc=$(ls "$WORK"/src/*.dsc 2>/dev/null | head -n 1)
[[ -n $dsc ]] || die "no .dsc downloaded"
(cd "$WORK/src" && dpkg-source -x "$dsc" sofia) >>"$WORK/apt.log" 2>&1 || die "dpkg-source -x failed"

echo "sofia-fuzz: building (clang, -fsanitize=fuzzer-no-link,address)"
cd "$WORK/src/sofia" || die "no source tree"
{
	autoreconf -fi &&
		CC=clang ./configure --disable-shared --enable-static --without-glib --disable-stun \
			--without-openssl --without-doxygen \
			CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address" &&
		make -j"$(nproc)" -C libsofia-sip-ua
} >"$WORK/build.log" 2>&1 || {
	tail -20 "$WORK/build.log" >&2
	die "build failed"
}
mkdir -p "$OUT" || die "cannot create $OUT"
cp libsofia-sip-ua/.libs/libsofia-sip-ua.a "$OUT/" || die "no libsofia-sip-ua.a built"
echo "$version" >"$OUT/VERSION"
echo "sofia-fuzz: $OUT/libsofia-sip-ua.a ($version)"
