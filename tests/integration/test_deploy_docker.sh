#!/usr/bin/env bash
# test_deploy_docker.sh - the containerised cluster of test_deploy.sh with docker instead of
# podman: the image built by `docker build` (BuildKit) from deploy/Containerfile, the cluster run
# from deploy/compose.yaml by `docker compose` (docker-compose 1.x where the plugin is missing, as
# on Debian bookworm) with `--scale mediaworker=3`, then the same cases (deploy_docker_*: image,
# up_ready, healthcheck as docker runs it, redis_auth, zmq_auth, call_tone, call_auth, reload,
# drain_scale_in, failover_kill, bridge_mac, no_leftovers, down);
# tests/integration/deploy_containers.sh has them.
#
# The daemon is the machine's own when one answers; else the test starts a private dockerd (its
# own socket, /var/lib/rtmp2sip-docker for its data, no iptables rules) and stops it at the end.
# DEPLOY_CONTAINERS=1 (make test-deploy, CI) installs docker.io and docker-compose from Debian when
# missing (their services are not started); unset (make test), this runs where they are installed
# already and this is root; 0 never runs it. Env as test_deploy.sh's.

if [[ -z ${DEPLOY_CONTAINERS:-} ]]; then
	DEPLOY_CONTAINERS=0
	DEPLOY_AUTO_WHY="not root"
	if [[ $(id -u) -eq 0 ]]; then
		DEPLOY_AUTO_WHY=""
		docker=/usr/bin/docker
		[[ -x $docker ]] || docker=$(command -v docker)
		if [[ -z $docker ]]; then
			DEPLOY_AUTO_WHY="docker not installed"
		elif ! "$docker" info >/dev/null 2>&1 && ! command -v dockerd >/dev/null; then
			DEPLOY_AUTO_WHY="no docker daemon answers and dockerd is not installed"
		elif ! "$docker" compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
			DEPLOY_AUTO_WHY="neither docker compose nor docker-compose installed"
		fi
		[[ -z $DEPLOY_AUTO_WHY ]] && DEPLOY_CONTAINERS=1 DEPLOY_AUTO=1
	fi
	export DEPLOY_CONTAINERS DEPLOY_AUTO_WHY DEPLOY_AUTO
fi

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ENGINE=docker
# shellcheck source=tests/integration/deploy_containers.sh
. "$(dirname "${BASH_SOURCE[0]}")/deploy_containers.sh"
