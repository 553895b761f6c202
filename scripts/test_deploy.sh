#!/usr/bin/env bash
# test_deploy.sh - `make test-deploy`: deploy/ for real (tests/integration/test_deploy*.sh with
# DEPLOY_CONTAINERS=1): the rendered Kubernetes base, the systemd units, then the image built and
# a compose cluster answering, draining and failing over calls, once per engine of
# DEPLOY_ENGINES ("podman docker" by default; "podman" or "docker" for one). Root; minutes
# (docs/deploy.md, "Tests"). Output in $BUILD/test-deploy.log too; ends with "N passed, N failed".
set -uo pipefail
BUILD=${BUILD:-build}
ENGINES=${DEPLOY_ENGINES:-podman docker}
log="$BUILD/test-deploy.log"
rc=0

mkdir -p "$BUILD"
: >"$log"
for e in $ENGINES; do
	case $e in
	podman) t=test_deploy ;;
	docker) t=test_deploy_docker ;;
	*)
		echo "FAIL test-deploy: unknown engine $e" | tee -a "$log"
		continue
		;;
	esac
	BUILD=$BUILD DEPLOY_CONTAINERS=1 bash "tests/integration/$t.sh" </dev/null 2>&1 | tee -a "$log" ||
		rc=1
done
p=$(grep -c '^PASS ' "$log")
f=$(grep -c '^FAIL ' "$log")
s=$(grep -c '^SKIP ' "$log")
if ((rc != 0 && f == 0)); then
	echo "FAIL test_deploy: exit status $rc"
	f=1
fi
echo "==="
((s > 0)) && echo "$s skipped"
echo "$p passed, $f failed"
((f == 0))
