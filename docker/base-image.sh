#!/bin/bash
# Make the base image `debian:bookworm-slim` available to buildah on a
# machine that reaches Debian's package mirror but no container registry:
# build a minimal Debian bookworm root with debootstrap and import it under
# the name the Dockerfile's `FROM debian:bookworm-slim` resolves to.
# Idempotent: does nothing when the image is already there. Installs
# buildah and debootstrap with apt when missing (as root).
#
# Used by docker/test.sh when no Docker engine runs; with Docker, the image
# is pulled from the registry instead and this is not needed.
set -euo pipefail
name=docker.io/library/debian:bookworm-slim
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
echo "base-image: debootstrap bookworm (about a minute)" >&2
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
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
