#!/bin/bash
# Make the base image `debian:bookworm-slim` available to buildah on a
# machine that reaches a Debian package mirror but no container registry:
# build a minimal Debian bookworm root with debootstrap and import it under
# the name the Dockerfile's `FROM debian:bookworm-slim` resolves to.
# Idempotent: does nothing when the image is already there. Installs
# buildah and debootstrap with apt when missing (as root).
#
# Used by docker/test.sh when no Docker engine runs; with Docker, the image
# is pulled from the registry instead and this is not needed.
#
# The Debian mirror is the machine's own: the first source of its apt
# configuration (deb822 *.sources or one-line sources.list) that serves the
# suite bookworm, or $MODSTORE_DEBIAN_MIRROR when set. `--print-mirror`
# prints it and exits; $APT_ETC (default /etc/apt) is where it looks.
set -euo pipefail
name=docker.io/library/debian:bookworm-slim

# The URI of the first apt source of type deb whose suites hold bookworm.
apt_mirror() {
	local etc=${APT_ETC:-/etc/apt} f
	for f in "$etc"/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: stanzas of "Key: value" lines, blank lines between
		awk 'function flush() {
			if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ &&
			    enabled != "no" && uri != "") { print uri; found = 1; exit }
			types = suites = uri = enabled = "" }
		/^[ \t]*$/ { flush(); next }
		/^#/ { next }
		tolower($1) == "types:" { $1 = ""; types = $0 }
		tolower($1) == "suites:" { $1 = ""; suites = $0 }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "enabled:" { enabled = tolower($2) }
		END { if (!found) flush() }' "$f"
	done | head -n 1 | grep . && return 0
	for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		# deb [options] URI SUITE COMPONENT...
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }'
	done | head -n 1 | grep .
}
mirror=${MODSTORE_DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && ! mirror=$(apt_mirror); then
	echo "base-image: no apt source of bookworm in ${APT_ETC:-/etc/apt}" \
		"(set MODSTORE_DEBIAN_MIRROR)" >&2
	exit 1
fi
if [ "${1:-}" = --print-mirror ]; then
	echo "$mirror"
	exit 0
fi
need() { command -v "$1" >/dev/null 2>&1; }
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! need buildah || ! need debootstrap; then
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
		buildah debootstrap >/dev/null
fi
if buildah images --noheading --format '{{.Name}}:{{.Tag}}' 2>/dev/null |
	grep -qx "$name"; then
	echo "base-image: $name is present"
	exit 0
fi
root=$(mktemp -d /tmp/modstore-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm from $mirror (about a minute)" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# what debian:bookworm-slim leaves out: downloaded packages, apt lists,
# documentation, manual pages and translations (as its dpkg excludes do)
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
	"$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
	"$root"/usr/share/man/* "$root"/usr/share/info/* \
	"$root"/usr/share/locale/* "$root"/var/log/*.log
mkdir -p "$root"/etc/dpkg/dpkg.cfg.d
cat >"$root"/etc/dpkg/dpkg.cfg.d/docker <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
# buildah has no `import` before 1.35 (Debian 12 has 1.28): a scratch
# container gets the root as a tar archive (extracted by `add`) instead.
tar -C "$root" --exclude=./dev/* -cf "$root.tar" .
c=$(buildah from scratch)
buildah add --quiet "$c" "$root.tar" / >/dev/null
rm -f "$root.tar"
buildah config --cmd /bin/bash "$c"
buildah commit --quiet --rm "$c" "$name" >/dev/null
echo "base-image: $name imported"
