#!/bin/bash
# make docker-test: build the image of docker/Dockerfile and run it.
# Deploy, commit, persist; stop the container (SIGTERM); start a new one on
# the same volume; check the state survived, restore, check again, and run
# `modstore verify` and `modstore health` (the HEALTHCHECK) inside it.
# Then a third container serves HTTPS with certificates made here
# (certtool), mounted read-only at /run/secrets/modstore as the README
# says, and requires a client certificate: checked from the host with curl
# and from inside with `modstore --cacert --cert --key health`.
# Prints the image size and the time from start to the first answered
# /health.
#
# With a Docker engine (`docker info` works) it uses docker. Otherwise
# buildah with chroot isolation, after docker/base-image.sh made the base
# image locally (Debian's mirror is enough, no registry). Chroot isolation
# shares the host's network, so the container is told to listen on
# 127.0.0.1:PORT (a free port) instead of the image's default 0.0.0.0:8080.
# Runs unattended as root (CI); installs buildah and debootstrap if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=localhost/modstore:test
work=$(mktemp -d /tmp/modstore-docker.XXXXXX)
engine=buildah
docker info >/dev/null 2>&1 && engine=docker
containers=()
bg_pid=
say() { printf 'docker-test: %s\n' "$*"; }
fail() {
	say "FAIL: $*"
	[ -f "$work/daemon.log" ] && tail -n 20 "$work/daemon.log"
	exit 1
}
cleanup() {
	set +e
	[ -n "$bg_pid" ] && kill "$bg_pid" 2>/dev/null && wait "$bg_pid" 2>/dev/null
	for c in "${containers[@]}"; do
		if [ $engine = docker ]; then
			docker rm -f "$c" >/dev/null 2>&1
		else
			buildah rm "$c" >/dev/null 2>&1
		fi
	done
	[ $engine = docker ] && docker volume rm -f "modstore-test-$$" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# A port below the kernel's ephemeral range (ip_local_port_range), so that
# no process given port 0 or making a connection takes it between this
# check and the daemon's bind.
free_port() {
	local p low=32768
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || :
	[ "$low" -gt 11024 ] || low=11024
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % (low - 10000)))
		if ! (: >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
PORT=$(free_port) || fail "no free port"
U=http://127.0.0.1:$PORT
# the server as seen from inside the container
IN_U=$U
[ $engine = docker ] && IN_U=http://127.0.0.1:8080
field() { sed -n "s/.*\"$1\":\"\([0-9A-F]*\)\".*/\1/p"; }

# --- build ---------------------------------------------------------------
t0=$(date +%s)
if [ $engine = docker ]; then
	say "building with docker"
	docker build -q -f docker/Dockerfile -t "$IMAGE" . >/dev/null
	size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
	size="$((size / 1024 / 1024)) MB"
else
	say "no Docker engine: buildah (chroot isolation)"
	docker/base-image.sh
	buildah bud --quiet --isolation chroot --format docker --layers \
		-f docker/Dockerfile -t "$IMAGE" . >/dev/null
	size=$(buildah images --noheading --format '{{.Size}}' "$IMAGE" | head -n 1)
fi
say "image $IMAGE built in $(($(date +%s) - t0)) s, size $size"

# --- run -------------------------------------------------------------------
if [ $engine = buildah ]; then
	mkdir -p "$work/data"
	chown 10001:10001 "$work/data"
	chmod 0700 "$work/data"
fi

# Start a container on the volume; set $health_ms (docker: from `docker
# run`; buildah: from `buildah run`, the container already made).
start() {
	local c t1 t2
	t1=$(date +%s%N)
	if [ $engine = docker ]; then
		c="modstore-test-$$-$1"
		docker run -d --name "$c" -p "127.0.0.1:$PORT:8080" \
			-v "modstore-test-$$:/data" "$IMAGE" >/dev/null
	else
		c=$(buildah from --quiet "$IMAGE")
		# buildah 1.28 would mount its own volume for the image's
		# VOLUME /data over the -v below: drop it from this container
		buildah config --volume /data- "$c"
		t1=$(date +%s%N) # the container exists: time the start only
		buildah run --isolation chroot -v "$work/data:/data" "$c" -- \
			modstored --dir /data --listen "127.0.0.1:$PORT" \
			>>"$work/daemon.log" 2>&1 &
		bg_pid=$!
	fi
	containers+=("$c")
	current=$c
	for _ in $(seq 300); do
		if curl -fsS "$U/health" >/dev/null 2>&1; then
			t2=$(date +%s%N)
			health_ms=$(((t2 - t1) / 1000000))
			return 0
		fi
		sleep 0.02
	done
	fail "no answer on /health"
}

# The pid of modstored under the buildah run process (chroot isolation
# makes it a plain descendant on the host).
daemon_pid() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = modstored ] || continue
		local q=${p#/proc/}
		while [ "$q" -gt 1 ]; do
			[ "$q" = "$bg_pid" ] && { echo "${p#/proc/}"; return 0; }
			q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null || echo 1)
		done
	done
	return 1
}

# Stop the container with SIGTERM; the daemon must exit 0.
stop() {
	local rc
	if [ $engine = docker ]; then
		docker stop -t 40 "$current" >/dev/null
		rc=$(docker inspect -f '{{.State.ExitCode}}' "$current")
	else
		local pid
		pid=$(daemon_pid) || fail "modstored not found"
		kill -TERM "$pid"
		rc=0
		wait "$bg_pid" || rc=$?
		bg_pid=
	fi
	[ "$rc" = 0 ] || fail "modstored exited $rc on SIGTERM"
}

# Run a command inside the current container (with the mounts of
# in_mounts: buildah gives each run its own).
in_mounts=()
in_container() {
	if [ $engine = docker ]; then
		docker exec "$current" "$@"
	else
		buildah run --isolation chroot "${in_mounts[@]}" "$current" -- "$@"
	fi
}

start 1
say "first /health answered $health_ms ms after the container started"
h1=$health_ms
if [ $engine = buildah ]; then
	uid=$(awk '/^Uid:/ {print $2}' "/proc/$(daemon_pid)/status")
else
	uid=$(docker exec "$current" id -u)
fi
[ "$uid" = 10001 ] || fail "modstored runs as uid $uid, not modstore (10001)"

M=$(printf 'docker module' | curl -fsS --data-binary @- "$U/modules" | field id)
[ ${#M} = 64 ] || fail "deploy"
S=$(curl -fsS -X POST "$U/sessions" | field id)
printf 'first state' | curl -fsS -X PUT --data-binary @- "$U/sessions/$S/modules/$M/memory?offset=0"
C1=$(curl -fsS -X POST "$U/sessions/$S/commit" | field commit)
S=$(curl -fsS -X POST "$U/sessions" | field id)
printf 'SECOND' | curl -fsS -X PUT --data-binary @- "$U/sessions/$S/modules/$M/memory?offset=0"
C2=$(curl -fsS -X POST "$U/sessions/$S/commit" | field commit)
[ ${#C1} = 64 ] && [ ${#C2} = 64 ] && [ "$C1" != "$C2" ] || fail "commits"
curl -fsS -X POST "$U/persist" >/dev/null
# the whole answer first: grep -q stops reading at its match (pipefail)
metrics=$(curl -fsS "$U/metrics") || fail "metrics"
grep -q '^modstore_commits 2$' <<<"$metrics" || fail "metrics"
say "deployed $M, committed $C1 and $C2, persisted"
stop
say "stopped with SIGTERM: exit 0"

start 2
say "second container on the same volume: /health after $health_ms ms"
[ "$(curl -fsS "$U/root" | field root)" = "$C2" ] || fail "root after restart is not C2"
commits=$(curl -fsS "$U/commits") || fail "commits"
grep -q "$C1" <<<"$commits" || fail "C1 was not persisted"
curl -fsS -X POST "$U/restore/$C1" >/dev/null || fail "restore"
[ "$(curl -fsS "$U/root" | field root)" = "$C1" ] || fail "root after restore"
[ "$(curl -fsS -r 0-10 "$U/modules/$M/memory")" = "first state" ] ||
	fail "memory after restore"
in_container modstore --url "$IN_U" verify "$C2" >"$work/verify.out" ||
	{ cat "$work/verify.out"; fail "verify C2 in the container"; }
in_container modstore --url "$IN_U" health >/dev/null || fail "the HEALTHCHECK command"
say "restored $C1; memory, root and 'modstore verify $C2' in the container are right"
stop

# --- HTTPS with the TLS files mounted ---------------------------------------
command -v certtool >/dev/null || apt-get install -y -qq gnutls-bin >/dev/null
tls=$work/tls
mkdir -p "$tls"
(
	cd "$tls"
	printf 'cn = "docker-test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
	printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ndns_name = "localhost"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' >server.tmpl
	printf 'cn = "docker-test client"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' >client.tmpl
	certtool --generate-privkey --key-type=ecdsa --outfile ca.key
	certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem
	for n in server client; do
		certtool --generate-privkey --key-type=ecdsa --outfile $n.key
		certtool --generate-certificate --load-privkey $n.key \
			--load-ca-certificate ca.pem --load-ca-privkey ca.key \
			--template $n.tmpl --outfile $n.pem
	done
) >/dev/null 2>&1 || fail "certtool"
# the daemon runs as modstore (10001): it must read them
chown -R 10001:10001 "$tls"
chmod 0500 "$tls"
chmod 0400 "$tls"/*
S_DIR=/run/secrets/modstore
TLS_OPTS=(--tls-cert $S_DIR/server.pem --tls-key $S_DIR/server.key
	--tls-client-ca $S_DIR/ca.pem)
if [ $engine = docker ]; then
	c="modstore-test-$$-tls"
	docker run -d --name "$c" -p "127.0.0.1:$PORT:8080" \
		-v "modstore-test-$$:/data" -v "$tls:$S_DIR:ro" \
		-e MODSTORE_TLS_CERT=$S_DIR/server.pem \
		-e MODSTORE_TLS_KEY=$S_DIR/server.key \
		-e MODSTORE_TLS_CLIENT_CA=$S_DIR/ca.pem "$IMAGE" >/dev/null
	IN_TLS=https://127.0.0.1:8080
else
	c=$(buildah from --quiet "$IMAGE")
	buildah config --volume /data- "$c"
	buildah run --isolation chroot -v "$work/data:/data" \
		-v "$tls:$S_DIR:ro" "$c" -- \
		modstored --dir /data --listen "127.0.0.1:$PORT" "${TLS_OPTS[@]}" \
		>>"$work/daemon.log" 2>&1 &
	bg_pid=$!
	IN_TLS=https://127.0.0.1:$PORT
fi
containers+=("$c")
current=$c
in_mounts=(-v "$tls:$S_DIR:ro")
C_ARGS=(--cacert "$tls/ca.pem" --cert "$tls/client.pem" --key "$tls/client.key")
up=
for _ in $(seq 300); do
	curl -fsS "${C_ARGS[@]}" "https://127.0.0.1:$PORT/health" >/dev/null 2>&1 &&
		{ up=1; break; }
	sleep 0.02
done
[ -n "$up" ] || fail "no answer on https://127.0.0.1:$PORT/health"
[ "$(curl -fsS "${C_ARGS[@]}" "https://127.0.0.1:$PORT/root" | field root)" = "$C1" ] ||
	fail "root over HTTPS"
curl -fsS --cacert "$tls/ca.pem" "https://127.0.0.1:$PORT/health" >/dev/null 2>&1 &&
	fail "served a client without a certificate"
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && fail "served plain HTTP"
in_container modstore --url "$IN_TLS" --cacert $S_DIR/ca.pem \
	--cert $S_DIR/client.pem --key $S_DIR/client.key health >/dev/null ||
	fail "modstore health over HTTPS in the container"
say "HTTPS with the mounted TLS files and a client certificate: ok"
stop

say "ok: image $size, first /health after ${h1} ms (engine: $engine)"
