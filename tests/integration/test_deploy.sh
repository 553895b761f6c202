#!/usr/bin/env bash
# test_deploy.sh - deploy/ checked for real: the Kubernetes base rendered and inspected, the systemd
# units verified, the entrypoint's defaults, and (with DEPLOY_CONTAINERS=1, which `make
# test-deploy` sets) the image built and a containerised cluster answering calls.
#
# Always (each skipped with the reason when its tool is missing):
#   deploy_k8s_render        `kubectl kustomize deploy/k8s` and the external-redis overlay render
#   deploy_k8s_objects       the rendered objects: signaler Service ports (RTMP TCP, SIP UDP+TCP),
#                            probes on /readyz and /healthz at the metrics port, downward-API
#                            advertised addresses, preStop drain hooks, grace periods above the drain
#                            times, PDBs, the HPA on rtmp2sip_worker_legs, Prometheus annotations,
#                            non-root; the overlay drops Redis and points REDIS_HOST elsewhere
#   deploy_systemd_verify    `systemd-analyze verify` on the units (ExecStart pointed at copies of
#                            the built binaries) prints nothing; hardening options present
#   deploy_entrypoint        rtmp2sip-entrypoint's defaults: a container worker (POD_IP), a
#                            container signaler, mediaworker@3 on a host; values given win
#   deploy_compose_file      deploy/compose.yaml: the three services, worker stop grace above its
#                            drain timeout, SIGTERM, no fixed worker ids or ports
#
# With DEPLOY_CONTAINERS=1 (root; podman, buildah, podman-compose and debootstrap are installed
# with apt-get when missing). The host's limits are detected and worked around as docs/deploy.md
# says: cgroups in hybrid mode -> the whole test re-runs in a private mount namespace with
# /sys/fs/cgroup/unified unmounted; no CAP_SYS_RESOURCE -> explicit --ulimit values. No registry
# is contacted: the base is BASE_IMAGE when it is in local storage, else deploy/mkbase.sh
# (debootstrap, its root file system cached in /var/tmp/rtmp2sip-base.tar); image layers are cached
# between runs (buildah --layers).
#   deploy_image             the image builds; its size; runs as uid 10001; STOPSIGNAL SIGTERM and
#                            the HEALTHCHECK are in its config; relayctl runs; both daemons start
#                            on a read-only root file system without tmpfs
#   deploy_up_ready          `WORKERS=3 podman-compose up -d`: the signaler's /readyz answers 200 on
#                            the published metrics port (time measured), relayctl in the signaler
#                            container lists 3 live workers, each worker's /readyz answers 200;
#                            deploy/podman-pin-bridge.sh fixes the network bridge's MAC
#   deploy_healthcheck       `podman healthcheck run` passes on the signaler and a worker
#   deploy_call_tone         ffmpeg on the host publishes a Speex tone to the published RTMP port,
#                            call/<SIPp on the host>; a player records the far end: the tone is back
#   deploy_drain_scale_in    three G.711 calls; the preStop hook (relayctl drain) run in one worker,
#                            then two workers stopped at once with `podman stop` (SIGTERM: drain;
#                            WORKER_DRAIN_TIMEOUT=5 s, then handover): they exit 0 before the grace
#                            period, one worker is left with every leg, every call keeps its tone
#   deploy_failover_kill     a worker restarted; a call placed; its worker killed (SIGKILL): the leg
#                            is adopted by the other worker (leg_moves_total grows, SIPp gets a
#                            re-INVITE with that worker's address) and the tone goes on to the end
#   deploy_bridge_mac        the bridge kept the MAC it was fixed at through the stops, the kill and
#                            the restart (says whether its port left, i.e. whether an unfixed bridge
#                            would have changed its MAC and cut the containers off from the host)
#   deploy_no_leftovers      no leg records in Redis once the calls ended
#   deploy_down              SIGTERM: the signaler exits 0 within 5 s; started again, its preStop
#                            hook drains it (relayctl signaler-drain) and it exits 0 by itself;
#                            `podman-compose down` removes every container
# Without DEPLOY_CONTAINERS set, they run when this is root and the four tools are already
# installed (so `make test` runs them where a container engine works); otherwise, and with
# DEPLOY_CONTAINERS=0, they are one SKIP line with the reason.
#
# Figures (image size, build time, up -> ready, calls) are printed as "figure:" lines.
# Env: BUILD (build), KEEP_TMP=1, DEPLOY_CONTAINERS, BASE_IMAGE, DEPLOY_KEEP=1 (leave the cluster up).

T_SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# DEPLOY_CONTAINERS unset (as under `make test`): the container part runs where a container engine
# works without installing anything - root, with podman, buildah, podman-compose and debootstrap
# present. DEPLOY_CONTAINERS=1 (make test-deploy, CI) installs what is missing; 0 never runs it.
if [[ -z ${DEPLOY_CONTAINERS:-} ]]; then
	DEPLOY_CONTAINERS=0
	DEPLOY_AUTO_WHY="not root"
	if [[ $(id -u) -eq 0 ]]; then
		DEPLOY_AUTO_WHY=""
		for c in podman buildah podman-compose debootstrap; do
			command -v "$c" >/dev/null 2>&1 || DEPLOY_AUTO_WHY+="${DEPLOY_AUTO_WHY:+, }$c"
		done
		[[ -n $DEPLOY_AUTO_WHY ]] && DEPLOY_AUTO_WHY="not installed: $DEPLOY_AUTO_WHY"
		[[ -z $DEPLOY_AUTO_WHY ]] && DEPLOY_CONTAINERS=1
	fi
	export DEPLOY_CONTAINERS DEPLOY_AUTO_WHY
fi

# cgroups in hybrid mode (cgroup v1 controllers plus a v2 tree at /sys/fs/cgroup/unified): crun
# refuses to start containers there; in a private mount namespace without the v2 tree it works.
# Everything container-related then has to stay in that namespace (network namespaces are bind
# mounts under /run/netns), so the whole script re-runs inside it.
cgroup_hybrid() {
	[[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == tmpfs ]] &&
		[[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]
}
if [[ ${DEPLOY_CONTAINERS:-0} == 1 && -z ${DEPLOY_IN_NS:-} && $(id -u) -eq 0 ]] && cgroup_hybrid &&
	command -v unshare >/dev/null; then
	echo "  [test_deploy] cgroups in hybrid mode: re-running in a private mount namespace without /sys/fs/cgroup/unified"
	# shellcheck disable=SC2016 # $0 is expanded by the inner shell
	exec unshare -m --propagation private env DEPLOY_IN_NS=1 bash -c \
		'umount /sys/fs/cgroup/unified || exit 1; exec bash "$0"' "$T_SELF"
fi

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEPLOY="$T_ROOT/deploy"
SIPP_DIR="$T_ROOT/tests/integration/sipp"

figure() {
	echo "figure: $*"
}

# ---------------------------------------------------------------- Kubernetes
if ! command -v kubectl >/dev/null 2>&1; then
	skip deploy_k8s_render "kubectl not installed"
	skip deploy_k8s_objects "kubectl not installed"
elif ! kubectl kustomize "$DEPLOY/k8s" >"$T_TMP/k8s.yaml" 2>"$T_TMP/k8s.err" ||
	! kubectl kustomize "$DEPLOY/k8s/overlays/external-redis" >"$T_TMP/k8s-ext.yaml" 2>>"$T_TMP/k8s.err"; then
	fail deploy_k8s_render "$(head -c 400 "$T_TMP/k8s.err")"
	skip deploy_k8s_objects "nothing rendered"
else
	pass deploy_k8s_render
	if ! python3 -c 'import yaml' 2>/dev/null; then
		skip deploy_k8s_objects "python3 yaml module missing (apt-get install python3-yaml)"
	elif out=$(python3 - "$T_TMP/k8s.yaml" "$T_TMP/k8s-ext.yaml" 2>&1 <<'EOF'
import sys, yaml
base = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ext = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
bad = []
def need(cond, why):
    if not cond:
        bad.append(why)
def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    return None
cm = next(d for d in base if d["kind"] == "ConfigMap")["data"]
drain = int(cm.get("WORKER_DRAIN_TIMEOUT", "60"))
prestop_deadline = int(cm.get("PRESTOP_DEADLINE", "60"))
need(cm.get("REDIS_HOST") == "rtmp2sip-redis", "REDIS_HOST is not the in-cluster Redis")

def container_checks(dep, port, advertised):
    name = dep["metadata"]["name"]
    tpl = dep["spec"]["template"]
    spec = tpl["spec"]
    c = spec["containers"][0]
    ann = tpl["metadata"].get("annotations", {})
    need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(port),
         name + ": prometheus.io annotations")
    ports = {p["name"]: p for p in c.get("ports", [])}
    need(ports.get("metrics", {}).get("containerPort") == port, name + ": metrics port %d" % port)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = c.get(probe, {}).get("httpGet", {})
        need(g.get("path") == path and g.get("port") in ("metrics", port), name + ": " + probe + " on " + path)
    env = {e["name"]: e for e in c.get("env", [])}
    for var in advertised:
        need(env.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
             name + ": " + var + " from status.podIP")
    need(env.get("METRICS_BIND", {}).get("value") == "0.0.0.0", name + ": METRICS_BIND 0.0.0.0 (probes come from the kubelet)")
    need(env.get("METRICS_PORT", {}).get("value") == str(port), name + ": METRICS_PORT %d" % port)
    need(any(r.get("configMapRef", {}).get("name", "").startswith("rtmp2sip-config") for r in c.get("envFrom", [])),
         name + ": envFrom the config map")
    hook = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    need(hook[-1:] == ["prestop"], name + ": preStop drain hook")
    sc = spec.get("securityContext", {})
    need(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 10001, name + ": non-root 10001")
    need(c.get("securityContext", {}).get("allowPrivilegeEscalation") is False, name + ": no privilege escalation")
    return spec, c, env

sig = find(base, "Deployment", "rtmp2sip-signaler")
mw = find(base, "Deployment", "rtmp2sip-mediaworker")
need(sig is not None and mw is not None, "signaler and mediaworker Deployments")
if sig and mw:
    spec, c, env = container_checks(sig, 9100, ["SIP_ADVERTISED_IP", "POD_IP"])
    need(c.get("args") == ["signaler"], "signaler: args [signaler]")
    need(spec.get("terminationGracePeriodSeconds", 30) > prestop_deadline + 5,
         "signaler: terminationGracePeriodSeconds above PRESTOP_DEADLINE + 5")
    cp = {(p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"]}
    need({(1935, "TCP"), (5060, "UDP"), (5060, "TCP")} <= cp, "signaler: container ports 1935/TCP, 5060/UDP+TCP")
    spec, c, env = container_checks(mw, 9101, ["RTP_ADVERTISED_IP", "POD_IP"])
    need(c.get("args") == ["mediaworker"], "mediaworker: args [mediaworker]")
    need(spec.get("terminationGracePeriodSeconds", 30) > drain + 3,
         "mediaworker: terminationGracePeriodSeconds above WORKER_DRAIN_TIMEOUT + the 3 s handover")
    need(env.get("WORKER_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
         "mediaworker: WORKER_ID from the pod name")
    need("$(POD_IP)" in env.get("WORKER_CTL_BIND", {}).get("value", ""), "mediaworker: ZeroMQ bound on the pod address")
    need("cpu" in c.get("resources", {}).get("requests", {}), "mediaworker: a CPU request (the HPA needs it)")
svc = find(base, "Service", "rtmp2sip-signaler")
need(svc is not None, "signaler Service")
if svc:
    sp = {(p["port"], p.get("protocol", "TCP")) for p in svc["spec"]["ports"]}
    need({(1935, "TCP"), (5060, "UDP"), (5060, "TCP")} <= sp, "Service: 1935/TCP, 5060/UDP, 5060/TCP")
for n in ("rtmp2sip-signaler", "rtmp2sip-mediaworker"):
    pdb = find(base, "PodDisruptionBudget", n)
    need(pdb is not None and ("maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]), n + ": PDB")
    if pdb and (sig and mw):
        dep = sig if "signaler" in n else mw
        need(pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], n + ": PDB selects the pods")
hpa = find(base, "HorizontalPodAutoscaler", "rtmp2sip-mediaworker")
need(hpa is not None, "mediaworker HPA")
if hpa:
    need(hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == "rtmp2sip-mediaworker",
         "HPA: autoscaling/v2 on the mediaworker Deployment")
    need(any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "rtmp2sip_worker_legs" for m in hpa["spec"]["metrics"]),
         "HPA: pods metric rtmp2sip_worker_legs")
    need(hpa["spec"]["minReplicas"] >= 2, "HPA: at least 2 workers")
need(find(base, "Deployment", "rtmp2sip-redis") and find(base, "Service", "rtmp2sip-redis"), "base: Redis Deployment + Service")
need(find(ext, "Deployment", "rtmp2sip-redis") is None and find(ext, "Service", "rtmp2sip-redis") is None,
     "external-redis overlay: no Redis objects")
ecm = next(d for d in ext if d["kind"] == "ConfigMap")
need(ecm["data"].get("REDIS_HOST") != "rtmp2sip-redis", "external-redis overlay: REDIS_HOST changed")
emw = find(ext, "Deployment", "rtmp2sip-mediaworker")
need(emw and emw["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == ecm["metadata"]["name"],
     "external-redis overlay: workers read the merged config map")
print("%d objects: %s" % (len(base), ", ".join(sorted({d["kind"] for d in base}))))
if bad:
    print("; ".join(bad))
    sys.exit(1)
EOF
	); then
		pass "deploy_k8s_objects ($out)"
	else
		fail deploy_k8s_objects "$out"
	fi
fi

# ---------------------------------------------------------------- systemd
if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip deploy_systemd_verify "systemd-analyze not installed"
elif [[ ! -x $BUILD/signaler || ! -x $BUILD/mediaworker ]]; then
	fail deploy_systemd_verify "$BUILD/signaler or mediaworker not built (make)"
else
	u="$T_TMP/units"
	mkdir -p "$u/bin" "$u/lib"
	cp "$BUILD/signaler" "$BUILD/mediaworker" "$u/bin/"
	cp "$DEPLOY/entrypoint.sh" "$u/lib/rtmp2sip-entrypoint"
	for f in "$DEPLOY"/systemd/*.service "$DEPLOY"/systemd/*.target; do
		sed -e "s#/usr/local/bin/#$u/bin/#g; s#/usr/local/lib/rtmp2sip/#$u/lib/#g" "$f" >"$u/$(basename "$f")"
	done
	cp "$u/mediaworker@.service" "$u/mediaworker@3.service"
	(cd "$u" && systemd-analyze verify ./rtmp2sip-signaler.service ./mediaworker@3.service \
		./rtmp2sip-mediaworkers.target) >"$T_TMP/verify.out" 2>&1
	rc=$?
	why=()
	[[ $rc -eq 0 && ! -s $T_TMP/verify.out ]] || why+=("verify (rc $rc): $(head -c 400 "$T_TMP/verify.out" | tr '\n' ' ')")
	for f in "$DEPLOY/systemd/rtmp2sip-signaler.service" "$DEPLOY/systemd/mediaworker@.service"; do
		for opt in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes DynamicUser=yes \
			RestrictAddressFamilies= KillSignal=SIGTERM TimeoutStopSec= EnvironmentFile=-/etc/rtmp2sip/; do
			grep -q "^$opt" "$f" || why+=("$(basename "$f"): no $opt")
		done
	done
	stop=$(sed -n 's/^TimeoutStopSec=//p' "$DEPLOY/systemd/mediaworker@.service")
	((stop > 63)) || why+=("mediaworker@: TimeoutStopSec=$stop not above WORKER_DRAIN_TIMEOUT (60) + 3")
	grep -q '^Environment=WORKER_INSTANCE=%i' "$DEPLOY/systemd/mediaworker@.service" ||
		why+=("mediaworker@: WORKER_INSTANCE=%i missing")
	if [[ ${#why[@]} -eq 0 ]]; then
		pass deploy_systemd_verify
	else
		fail deploy_systemd_verify "$(printf '%s; ' "${why[@]}")"
	fi
fi

# ---------------------------------------------------------------- entrypoint defaults
# A copy of the entrypoint next to stand-ins that print their environment.
e="$T_TMP/ep"
mkdir -p "$e"
cp "$DEPLOY/entrypoint.sh" "$e/rtmp2sip-entrypoint"
for d in signaler mediaworker; do
	printf '#!/bin/sh\necho "%s"; env | sort\n' "$d" >"$e/$d"
	chmod +x "$e/$d"
done
ep_env() {
	env -i PATH=/usr/bin:/bin "$@" bash "$e/rtmp2sip-entrypoint" "${EP_CMD:-mediaworker}" 2>&1
}
why=()
out=$(EP_CMD=mediaworker ep_env RTMP2SIP_CONTAINER=1 POD_IP=10.1.2.3)
for kv in WORKER_CTL_BIND=tcp://10.1.2.3:7001 WORKER_MEDIA_BIND=tcp://10.1.2.3:7002 RTP_BIND_IP=0.0.0.0 \
	RTP_ADVERTISED_IP=10.1.2.3 METRICS_BIND=0.0.0.0 REDIS_HOST=redis "WORKER_ID=$(tr -c 'A-Za-z0-9._\n-' '-' </proc/sys/kernel/hostname)"; do
	grep -qx -- "$kv" <<<"$out" || why+=("container worker: no $kv")
done
out=$(EP_CMD=signaler ep_env RTMP2SIP_CONTAINER=1 POD_IP=10.1.2.4 REDIS_HOST=r1 RTMP_BIND=)
for kv in RTMP_BIND=0.0.0.0 SIP_ADVERTISED_IP=10.1.2.4 REDIS_HOST=r1 METRICS_BIND=0.0.0.0; do
	grep -qx -- "$kv" <<<"$out" || why+=("container signaler: no $kv")
done
out=$(EP_CMD=mediaworker ep_env WORKER_INSTANCE=3 RTP_ADVERTISED_IP=192.0.2.1)
for kv in METRICS_PORT=9103 RTP_PORT_MIN=25000 RTP_PORT_MAX=27499 RTP_ADVERTISED_IP=192.0.2.1; do
	grep -qx -- "$kv" <<<"$out" || why+=("mediaworker@3: no $kv")
done
grep -q '^WORKER_ID=.*-mw-3$' <<<"$out" || why+=("mediaworker@3: no WORKER_ID ...-mw-3")
grep -q '^WORKER_CTL_BIND=' <<<"$out" && why+=("mediaworker@3: container defaults on a host")
out=$(EP_CMD=mediaworker ep_env WORKER_INSTANCE=99)
grep -q 'WORKER_INSTANCE=99' <<<"$out" || why+=("WORKER_INSTANCE=99 accepted: $out")
if [[ ${#why[@]} -eq 0 ]]; then
	pass deploy_entrypoint
else
	fail deploy_entrypoint "$(printf '%s; ' "${why[@]}")"
fi

# ---------------------------------------------------------------- compose file
if ! python3 -c 'import yaml' 2>/dev/null; then
	skip deploy_compose_file "python3 yaml module missing (apt-get install python3-yaml)"
elif out=$(python3 - "$DEPLOY/compose.yaml" 2>&1 <<'EOF'
import re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
bad = []
def env(svc):
    e = s[svc].get("environment", [])
    if isinstance(e, dict):
        return {k: str(v) for k, v in e.items()}
    return dict(x.split("=", 1) if "=" in x else (x, None) for x in e)
def secs(v):
    v = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v))
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", v)
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
def dflt(v):
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v or "")
for n in ("redis", "signaler", "mediaworker"):
    if n not in s:
        bad.append("no service " + n)
if not bad:
    w, g = env("mediaworker"), env("signaler")
    drain = int(dflt(w.get("WORKER_DRAIN_TIMEOUT")) or 60)
    if secs(s["mediaworker"].get("stop_grace_period", "10s")) <= drain + 3:
        bad.append("mediaworker stop_grace_period not above WORKER_DRAIN_TIMEOUT + 3")
    for n in ("signaler", "mediaworker"):
        if s[n].get("stop_signal") != "SIGTERM":
            bad.append(n + ": stop_signal SIGTERM")
        if s[n].get("command") != [n]:
            bad.append(n + ": command [" + n + "]")
    for k in ("WORKER_ID", "METRICS_PORT", "WORKER_CTL_BIND"):
        if w.get(k):
            bad.append("mediaworker sets " + k + ": replicas would share it")
    if "ports" in s["mediaworker"]:
        bad.append("mediaworker publishes ports: replicas would clash")
    pp = " ".join(s["signaler"].get("ports", []))
    for p in (":1935/tcp", ":5060/udp", ":5060/tcp"):
        if p not in pp:
            bad.append("signaler does not publish " + p)
    if "replicas" not in s["mediaworker"].get("deploy", {}):
        bad.append("mediaworker: no deploy.replicas")
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
); then
	pass deploy_compose_file
else
	fail deploy_compose_file "$out"
fi

# ---------------------------------------------------------------- containers
CASES=(deploy_image deploy_up_ready deploy_healthcheck deploy_call_tone deploy_drain_scale_in
	deploy_failover_kill deploy_bridge_mac deploy_no_leftovers deploy_down)
skip_containers() {
	local c
	for c in "${CASES[@]}"; do
		skip "$c" "$1"
	done
	finish
}
if [[ ${DEPLOY_CONTAINERS:-0} != 1 ]]; then
	skip deploy_containers "${DEPLOY_AUTO_WHY:+$DEPLOY_AUTO_WHY; }run make test-deploy as root (installs podman, builds the image: minutes)"
	finish
fi
[[ $(id -u) -eq 0 ]] || skip_containers "not root: rootless podman is not set up by this test"
for cmd in ffmpeg sipp curl python3; do
	command -v "$cmd" >/dev/null 2>&1 || skip_containers "$cmd not installed (scripts/deps.sh install)"
done
[[ -x $WAVCHECK ]] || { fail deploy_setup "$WAVCHECK not built (make)"; finish; }

# Container tools: installed from Debian when missing (this test runs as root). netavark runs
# iptables for the bridge network but does not depend on it: without it every container of the
# compose network fails to start ("netavark: No such file or directory").
need_pkgs=()
for pc in podman:podman buildah:buildah podman-compose:podman-compose debootstrap:debootstrap \
	/usr/lib/podman/netavark:netavark /usr/lib/podman/aardvark-dns:aardvark-dns iptables:iptables; do
	c=${pc%%:*}
	if [[ $c == /* ]]; then [[ -x $c ]] || need_pkgs+=("${pc#*:}"); else command -v "$c" >/dev/null || need_pkgs+=("${pc#*:}"); fi
done
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
	note "installing ${need_pkgs[*]}"
	if ! command -v apt-get >/dev/null ||
		! { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y \
				--no-install-recommends "${need_pkgs[@]}"; }; } >"$T_TMP/apt.log" 2>&1; then
		skip_containers "cannot install ${need_pkgs[*]}: $(tail -n 2 "$T_TMP/apt.log" | tr '\n' ' ')"
	fi
fi

PROJECT="rtmp2sip-t$$"
IMAGE=localhost/rtmp2sip:test
REDIS_IMAGE=localhost/rtmp2sip-redis:test
LABEL="com.docker.compose.project=$PROJECT"
# Every podman-compose call goes through here, with the test's override file.
pc() {
	podman-compose -p "$PROJECT" -f "$DEPLOY/compose.yaml" -f "$T_TMP/compose.test.yaml" "$@"
}

# Leftovers of an earlier run that was killed: removed from the mount namespace their containers
# live in (their network namespaces are mounted there only), else as well as it goes.
cleanup_project() {
	local p=$1 ctr conmon
	for ctr in $(podman ps -aq --filter "label=com.docker.compose.project=$p" 2>/dev/null); do
		conmon=$(podman inspect --format '{{.State.ConmonPid}}' "$ctr" 2>/dev/null)
		if [[ -n $conmon && $conmon != 0 && -e /proc/$conmon/ns/mnt ]]; then
			nsenter -t "$conmon" -m podman rm -f -t 0 "$ctr" >/dev/null 2>&1
		fi
		podman rm -f -t 0 "$ctr" >/dev/null 2>&1
	done
	podman network rm -f "${p}_default" >/dev/null 2>&1
	# netavark 1.4 leaves one empty NETAVARK-DN-* chain behind per removed network: drop the
	# empty ones (iptables refuses to delete a chain that still has rules or references).
	if command -v iptables >/dev/null; then
		for chain in $(iptables -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK-DN-/ { print $2 }'); do
			iptables -t nat -S "$chain" 2>/dev/null | grep -qv '^-N' ||
				iptables -t nat -X "$chain" 2>/dev/null
		done
	fi
	return 0
}
for old in $(podman ps -a --format '{{index .Labels "com.docker.compose.project"}}' 2>/dev/null |
	grep -E '^rtmp2sip-t[0-9]+$' | sort -u); do
	note "removing the containers of an earlier run ($old)"
	cleanup_project "$old"
done

SIPP_PID=""
# shellcheck disable=SC2317 # called through the trap
on_exit() {
	if [[ -n $SIPP_PID ]]; then
		kill "$SIPP_PID" 2>/dev/null
	fi
	if [[ ${DEPLOY_KEEP:-0} == 1 ]]; then
		note "DEPLOY_KEEP=1: project $PROJECT left up (podman-compose -p $PROJECT down)"
	else
		pc down -t 2 >/dev/null 2>&1
		cleanup_project "$PROJECT"
	fi
	stop_all
}
trap on_exit EXIT

# --- what this host allows: a throw-away container tells (after the base exists)
BASE=${BASE_IMAGE:-}
if [[ -z $BASE ]]; then
	if podman image exists docker.io/library/debian:bookworm-slim; then
		BASE=docker.io/library/debian:bookworm-slim
	else
		BASE=localhost/rtmp2sip-base:bookworm
		if ! podman image exists "$BASE"; then
			t0=$(date +%s)
			if ! bash "$DEPLOY/mkbase.sh" "$BASE" >"$T_TMP/mkbase.log" 2>&1; then
				skip_containers "no base image: docker.io/library/debian:bookworm-slim is not in local storage (no registry is contacted) and deploy/mkbase.sh failed: $(tail -n 3 "$T_TMP/mkbase.log" | tr '\n' ' ')"
			fi
			figure "base image $BASE made in $(($(date +%s) - t0)) s (deploy/mkbase.sh)"
		fi
	fi
elif ! podman image exists "$BASE"; then
	skip_containers "BASE_IMAGE=$BASE is not in local storage"
fi
note "base image: $BASE"

ULIMITS=()
probe_run() {
	podman run --rm --network none "${ULIMITS[@]}" "$BASE" true >"$T_TMP/probe.log" 2>&1
}
if ! probe_run; then
	if grep -qi 'setrlimit\|rlimit' "$T_TMP/probe.log"; then
		# No CAP_SYS_RESOURCE: the runtime cannot set the default limits; ask for ones within ours.
		nofile=$(ulimit -Hn)
		[[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
		ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=32768:32768)
		note "the runtime cannot raise rlimits here: running with ${ULIMITS[*]}"
	fi
	if ! probe_run; then
		skip_containers "containers cannot run here: $(grep -v '^time=' "$T_TMP/probe.log" | tail -n 2 | tr '\n' ' ')"
	fi
fi

# --- deploy_image
BUILD_ARGS=(--isolation chroot --layers --format docker --pull=never --build-arg "BASE_IMAGE=$BASE")
t0=$(date +%s)
if ! buildah bud "${BUILD_ARGS[@]}" --ignorefile "$DEPLOY/Containerfile.dockerignore" \
	-f "$DEPLOY/Containerfile" -t "$IMAGE" "$T_ROOT" >"$T_TMP/build.log" 2>&1; then
	fail deploy_image "buildah bud failed: $(grep -iE 'error|fail' "$T_TMP/build.log" | tail -n 3 | tr '\n' ' ')"
	log_tail "$T_TMP/build.log" 30
	skip_containers "no image"
fi
build_s=$(($(date +%s) - t0))
if ! buildah bud "${BUILD_ARGS[@]}" -f "$DEPLOY/redis.Containerfile" -t "$REDIS_IMAGE" "$DEPLOY" \
	>"$T_TMP/build-redis.log" 2>&1; then
	fail deploy_image "the Redis image did not build: $(tail -n 3 "$T_TMP/build-redis.log" | tr '\n' ' ')"
	skip_containers "no Redis image"
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')
base_mb=$(awk -v s="$(podman image inspect --format '{{.Size}}' "$BASE")" 'BEGIN { printf "%.1f", s / 1e6 }')
figure "image $IMAGE: $size_mb MB (base $base_mb MB), built in $build_s s (layers cached between runs)"
why=()
cfg=$(podman image inspect --format '{{.Config.User}}|{{.Config.StopSignal}}|{{.Config.Entrypoint}}|{{.Config.Cmd}}' "$IMAGE")
[[ $cfg == "10001:10001|SIGTERM|[/usr/bin/rtmp2sip-entrypoint]|[signaler]" ]] || why+=("config: $cfg")
hc=$(podman image inspect --format '{{if .HealthCheck}}{{.HealthCheck.Test}}{{end}}' "$IMAGE" 2>/dev/null)
[[ $hc == *healthcheck* ]] || why+=("no HEALTHCHECK in the image config ($hc)")
uid=$(podman run --rm --network none --no-healthcheck "${ULIMITS[@]}" "$IMAGE" id -u 2>/dev/null)
[[ $uid == 10001 ]] || why+=("runs as uid '$uid'")
v=$(podman run --rm --network none --no-healthcheck "${ULIMITS[@]}" "$IMAGE" relayctl --help 2>/dev/null | head -n 1)
[[ $v == usage:* ]] || why+=("relayctl: $v")
((size < 200000000)) || why+=("image is $size_mb MB")
# Both daemons start on a read-only root without the tmpfs podman adds (as readOnlyRootFilesystem
# in Kubernetes): nothing is written to the file system.
for d in signaler mediaworker; do
	timeout 20 podman run --rm --network none --no-healthcheck --read-only --read-only-tmpfs=false \
		"${ULIMITS[@]}" -e POD_IP=127.0.0.1 -e REDIS_HOST=127.0.0.1 --stop-timeout 2 \
		--entrypoint /bin/bash "$IMAGE" -c "timeout -s INT 2 rtmp2sip-entrypoint $d" \
		>"$T_TMP/ro-$d.log" 2>&1
	grep -q "$d ready\|signaler .* ready" "$T_TMP/ro-$d.log" ||
		why+=("$d on a read-only root: $(grep -v '^time=' "$T_TMP/ro-$d.log" | tail -n 2 | tr '\n' ' ')")
done
if [[ ${#why[@]} -eq 0 ]]; then
	pass "deploy_image ($size_mb MB)"
else
	fail deploy_image "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_up_ready
RTMP_PUB=$(free_port)
SIP_PUB=$(free_port)
METRICS_PUB=$(free_port)
{
	echo "services:"
	for s in redis signaler mediaworker; do
		echo "  $s:"
		if [[ ${#ULIMITS[@]} -gt 0 ]]; then
			echo "    ulimits:"
			echo "      nofile: {soft: ${nofile:-20000}, hard: ${nofile:-20000}}"
			echo "      nproc: {soft: 32768, hard: 32768}"
		fi
		# What the Kubernetes manifests ask for: a read-only root file system. No restart policy:
		# a daemon drained by relayctl exits by itself, and its exit status is checked.
		if [[ $s != redis ]]; then
			echo "    read_only: true"
			echo "    restart: \"no\""
		fi
	done
} >"$T_TMP/compose.test.yaml"
export RTMP2SIP_IMAGE=$IMAGE REDIS_IMAGE RTMP_PUBLISH=$RTMP_PUB SIP_PUBLISH=$SIP_PUB \
	METRICS_PUBLISH=$METRICS_PUB WORKERS=3 WORKER_DRAIN_TIMEOUT=5 LOG_LEVEL=info
t0=$(date +%s.%N)
pc up -d >"$T_TMP/up.log" 2>&1
up_rc=$?
up_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
ready=""
for ((i = 0; i < 300; i++)); do
	if [[ $(curl -s -m 1 "http://127.0.0.1:$METRICS_PUB/readyz") == ready ]]; then
		ready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		break
	fi
	sleep 0.1
done
ctr() { # ctr SERVICE: the service's container names, in replica order
	podman ps -a --filter "label=$LABEL" --filter "label=com.docker.compose.service=$1" \
		--format '{{index .Labels "com.docker.compose.container-number"}} {{.Names}}' | sort -n |
		awk '{ print $2 }'
}
SIG_CTR=$(ctr signaler)
REDIS_CTR=$(ctr redis)
mapfile -t WORKERS_CTR < <(ctr mediaworker)
rcli() {
	podman exec "$REDIS_CTR" redis-cli "$@"
}
relayctl() {
	podman exec "$SIG_CTR" rtmp2sip-entrypoint relayctl "$@"
}
# alive_workers: the ids of the live workers, per relayctl.
alive_workers() {
	relayctl --json workers 2>/dev/null | python3 -c 'import json, sys
print(" ".join(sorted(w["worker_id"] for w in json.load(sys.stdin) if w.get("alive"))))' 2>/dev/null
}
worker_id() { # worker_id CONTAINER: its WORKER_ID (the container host name)
	podman inspect --format '{{.Config.Hostname}}' "$1"
}
worker_ip() {
	podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"
}
why=()
((up_rc == 0)) || why+=("podman-compose up exited $up_rc: $(grep -iv '^podman\|^\[' "$T_TMP/up.log" | grep -i err | tail -n 2 | tr '\n' ' ')")
[[ -n $ready ]] || why+=("signaler /readyz not 200 within 30 s: $(curl -s -m 1 "http://127.0.0.1:$METRICS_PUB/readyz")")
[[ ${#WORKERS_CTR[@]} -eq 3 ]] || why+=("${#WORKERS_CTR[@]} worker containers, not 3")
for ((i = 0; i < 50; i++)); do
	alive=$(alive_workers)
	[[ $(wc -w <<<"$alive") -eq 3 ]] && break
	sleep 0.2
done
[[ $(wc -w <<<"$alive") -eq 3 ]] || why+=("relayctl sees live workers '$alive'")
for w in "${WORKERS_CTR[@]}"; do
	r=$(curl -s -m 2 "http://$(worker_ip "$w"):9101/readyz")
	[[ $r == ready ]] || why+=("$w /readyz: '$r'")
done
# What docs/deploy.md asks of podman users with netavark before 1.9: the bridge's MAC fixed, else
# the first container to go away that holds the bridge's lowest port MAC cuts the others off.
BRIDGE=$(podman network inspect "${PROJECT}_default" --format '{{.NetworkInterface}}' 2>/dev/null)
pin=$(sh "$DEPLOY/podman-pin-bridge.sh" "${PROJECT}_default" 2>&1) || why+=("$pin")
BRIDGE_MAC=$(cat "/sys/class/net/$BRIDGE/address" 2>/dev/null)
note "$pin"
if [[ ${#why[@]} -eq 0 ]]; then
	figure "podman-compose up (redis, signaler, 3 workers) to signaler /readyz 200: $ready s (up itself returned after $up_s s)"
	pass "deploy_up_ready ($ready s)"
else
	fail deploy_up_ready "$(printf '%s; ' "${why[@]}")"
	for c in "$SIG_CTR" "${WORKERS_CTR[@]}"; do
		[[ -n $c ]] && podman logs "$c" >"$T_TMP/$c.log" 2>&1 && log_tail "$T_TMP/$c.log" 10
	done
	skip_containers "the cluster did not come up"
fi

# --- deploy_healthcheck
why=()
for c in "$SIG_CTR" "${WORKERS_CTR[0]}"; do
	# (podman without systemd logs that it cannot schedule the checks: time=... lines)
	podman healthcheck run "$c" >"$T_TMP/hc.log" 2>&1
	rc=$?
	out=$(grep -v '^time=' "$T_TMP/hc.log" | tr '\n' ' ')
	[[ $rc -eq 0 ]] || why+=("$c: exit $rc ${out:-unhealthy}")
done
if [[ ${#why[@]} -eq 0 ]]; then
	pass deploy_healthcheck
else
	fail deploy_healthcheck "$(printf '%s; ' "${why[@]}")"
fi

# --- calls. SIPp answers on the host, on the compose network's gateway address (the containers
# reach it; its RTP echo goes back to each worker's container address).
GW=$(podman network inspect "${PROJECT}_default" --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null)
SIPP_PORT=$(free_port)
SIPP_MPORT=$(free_port)
SIPP_MPORT=$((SIPP_MPORT / 2 * 2))
URL="rtmp://127.0.0.1:$RTMP_PUB/call"
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
# The callee takes re-INVITEs (media moving to another worker) and echoes RTP to its source.
(cd "$T_TMP" && exec sipp -sf "$SIPP_DIR/cluster_uas_reinvite.xml" -rtp_echo -mp "$SIPP_MPORT" \
	-p "$SIPP_PORT" -i "$GW" -nostdin -trace_msg -message_file "$T_TMP/uas.msg" \
	-trace_err -error_file "$T_TMP/uas.err") >"$T_TMP/sipp.log" 2>&1 &
SIPP_PID=$!
T_PIDS+=("$SIPP_PID")
sleep 0.5
CALLS=0

# call_bg NAME CODEC FREQ SECONDS: a player recording NAME.wav (SECONDS - 2 s) and a publisher of
# a FREQ tone (SECONDS s) on call/NAME@<SIPp> (one call per destination); pids in CALL_PIDS.
declare -A CALL_PIDS=()
call_bg() {
	local name=$1 codec freq=$3 secs=$4 u="$URL/$1@$GW:$SIPP_PORT"
	[[ $2 == speex ]] && codec=(-c:a libspeex -ac 1 -ar 16000) || codec=(-c:a pcm_mulaw -ac 1 -ar 8000)
	timeout $((secs + 20)) "${FF[@]}" -analyzeduration 1000000 -i "$u" -t $((secs - 2)) \
		"$T_TMP/$name.wav" >"$T_TMP/$name.play.log" 2>&1 &
	CALL_PIDS[$name.play]=$!
	sleep 1
	timeout $((secs + 20)) "${FF[@]}" -re -f lavfi -i "sine=frequency=$freq:sample_rate=16000:duration=$secs" \
		"${codec[@]}" -f flv "$u" >"$T_TMP/$name.pub.log" 2>&1 &
	CALL_PIDS[$name.pub]=$!
	CALLS=$((CALLS + 1))
}
# call_wait NAME: waits for both ends of the call.
call_wait() {
	wait "${CALL_PIDS[$1.pub]}" 2>/dev/null
	wait "${CALL_PIDS[$1.play]}" 2>/dev/null
}
# tone NAME FREQ MIN-SECONDS [wavcheck options]: NAME.wav holds FREQ; prints why not.
tone() {
	local name=$1 freq=$2 min=$3
	shift 3
	[[ -s $T_TMP/$name.wav ]] || { echo "$name: no recording ($(tail -n 1 "$T_TMP/$name.play.log"))"; return 1; }
	"$WAVCHECK" "$T_TMP/$name.wav" --expect-freq "$freq" --tol 30 --min-duration "$min" \
		--min-rms-dbfs -35 "$@" >"$T_TMP/$name.check" 2>&1 && return 0
	echo "$name: $(grep -m1 FAIL "$T_TMP/$name.check" || tail -n 1 "$T_TMP/$name.check")"
	return 1
}
# legs_on: "worker=count ..." of the leg records in Redis.
legs_on() {
	local k
	for k in $(rcli --scan --pattern 'rs:v1:leg:*'); do
		rcli hget "$k" worker
	done | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }'
}

# --- deploy_call_tone
call_bg tone speex 1000 8
call_wait tone
if out=$(tone tone 1000 4); then
	pass deploy_call_tone
else
	fail deploy_call_tone "$out; $(grep -i 'call\|sip' <(podman logs "$SIG_CTR" 2>&1) | tail -n 3 | tr '\n' ' ')"
fi

# --- deploy_drain_scale_in: three G.711 calls (pass-through: a steady tone across a handover,
# see docs/architecture.md on adopted Speex decoders), then two workers stopped at once.
GRACE=20
for f in 500 700 900; do
	call_bg "drain$f" pcmu "$f" 22
done
sleep 4
before=$(legs_on)
# Stop two workers, those carrying legs first: the third takes their legs when the drain ends.
mapfile -t order < <(for w in "${WORKERS_CTR[@]}"; do
	n=$(grep -o "$(worker_id "$w")=[0-9]*" <<<"$before" | cut -d= -f2)
	echo "${n:-0} $w"
done | sort -rn | awk '{ print $2 }')
STOPPED=("${order[0]}" "${order[1]}")
KEPT=${order[2]}
why=()
# The first one as Kubernetes would: the preStop hook (relayctl drain), then SIGTERM.
pre=$(timeout 20 podman exec "${STOPPED[0]}" rtmp2sip-entrypoint prestop 2>&1)
pre_rc=$?
[[ $pre_rc -eq 0 && $pre == *"done: drain worker"* ]] || why+=("prestop hook: exit $pre_rc: $pre")
t0=$(date +%s.%N)
for w in "${STOPPED[@]}"; do
	podman stop -t "$GRACE" "$w" >"$T_TMP/stop-$w.log" 2>&1 &
done
wait_stops=()
for w in "${STOPPED[@]}"; do
	for ((i = 0; i < (GRACE + 5) * 10; i++)); do
		[[ $(podman inspect --format '{{.State.Status}}' "$w") == exited ]] && break
		sleep 0.1
	done
	wait_stops+=("$w:$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')")
done
after=$(legs_on)
for f in 500 700 900; do
	call_wait "drain$f"
done
for w in "${STOPPED[@]}"; do
	st=$(podman inspect --format '{{.State.ExitCode}}' "$w")
	[[ $st == 0 ]] || why+=("$w exited $st (137: killed at the grace period)")
	podman logs "$w" >"$T_TMP/$w.log" 2>&1
	grep -q 'SIGTERM: draining\|relayctl: drain' "$T_TMP/$w.log" || why+=("$w: no drain in its log")
done
alive=$(alive_workers)
[[ $alive == "$(worker_id "$KEPT")" ]] || why+=("live workers after the scale-in: '$alive', not $(worker_id "$KEPT")")
[[ -z $after || $after == "$(worker_id "$KEPT")=3 " ]] || why+=("legs after the drain: $after")
for f in 500 700 900; do
	out=$(tone "drain$f" "$f" 15) || why+=("$out")
	# The part after the handover (5 s drain timeout + up to 3 s handover, from second 4).
	out=$(tone "drain$f" "$f" 5 --ignore-start 13) || why+=("after the handover: $out")
done
note "legs before the stop: $before; after: ${after:-none}; stopped after: ${wait_stops[*]} s"
if [[ ${#why[@]} -eq 0 ]]; then
	pass "deploy_drain_scale_in (3 calls; workers stopped in ${wait_stops[*]} s)"
else
	fail deploy_drain_scale_in "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_failover_kill: a stopped worker comes back; a call lands; its worker is killed.
podman start "${STOPPED[0]}" >/dev/null 2>&1
for ((i = 0; i < 100; i++)); do
	[[ $(wc -w <<<"$(alive_workers)") -eq 2 ]] && break
	sleep 0.2
done
why=()
[[ $(wc -w <<<"$(alive_workers)") -eq 2 ]] || why+=("the restarted worker is not live: '$(alive_workers)'")
moves0=$(curl -s -m 2 "http://127.0.0.1:$METRICS_PUB/metrics" | awk '$1 == "rtmp2sip_signaler_leg_moves_total" { print $2 }')
call_bg kill pcmu 600 20
sleep 5
victim_id=$(legs_on | awk '{ split($1, a, "="); print a[1] }')
victim=""
for w in "${STOPPED[0]}" "$KEPT"; do
	[[ $(worker_id "$w") == "$victim_id" ]] && victim=$w
done
survivor=""
if [[ -z $victim ]]; then
	why+=("no leg of the call on a live worker (legs: $(legs_on))")
else
	[[ $victim == "$KEPT" ]] && survivor=${STOPPED[0]} || survivor=$KEPT
	survivor_ip=$(worker_ip "$survivor")
	sdp0=$(grep -c "c=IN IP4 $survivor_ip" "$T_TMP/uas.msg")
	podman kill -s KILL "$victim" >/dev/null 2>&1
	note "killed $victim ($victim_id) carrying the call; $(worker_id "$survivor") at $survivor_ip is left"
fi
call_wait kill
if [[ -n $survivor ]]; then
	# The gateway re-INVITEs the callee with the adopting worker's address.
	sdp1=$(grep -c "c=IN IP4 $survivor_ip" "$T_TMP/uas.msg")
	((sdp1 > sdp0)) || why+=("no re-INVITE naming the survivor's address $survivor_ip reached SIPp")
fi
moves1=$(curl -s -m 2 "http://127.0.0.1:$METRICS_PUB/metrics" | awk '$1 == "rtmp2sip_signaler_leg_moves_total" { print $2 }')
((${moves1:-0} > ${moves0:-0})) || why+=("leg_moves_total $moves0 -> $moves1")
# The recording starts with the call; the kill comes 5 s in: the tone is back within 1.5 s of it
# and lasts to the end (18 s recorded).
out=$(tone kill 600 15) || why+=("$out")
out=$(tone kill 600 10 --ignore-start 6.5) || why+=("after the kill: $out")
if [[ ${#why[@]} -ne 0 && -n $survivor ]]; then
	why+=("the adopted leg: $(podman logs "$survivor" 2>&1 | grep -F 'leg destroyed' | tail -n 1 | cut -c1-300)")
fi
if [[ ${#why[@]} -eq 0 ]]; then
	pass deploy_failover_kill
else
	fail deploy_failover_kill "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_bridge_mac: fixed before the first stop, so unchanged now; whether a port holding the
# fixed MAC left (what would have moved an unfixed bridge) is said.
now_mac=$(cat "/sys/class/net/$BRIDGE/address" 2>/dev/null)
now_type=$(cat "/sys/class/net/$BRIDGE/addr_assign_type" 2>/dev/null)
held=gone
for port in /sys/class/net/"$BRIDGE"/brif/*; do
	[[ $(cat "/sys/class/net/${port##*/}/address" 2>/dev/null) == "$BRIDGE_MAC" ]] && held=present
done
if [[ -n $BRIDGE_MAC && $now_mac == "$BRIDGE_MAC" && $now_type == 3 ]]; then
	pass "deploy_bridge_mac ($BRIDGE kept $BRIDGE_MAC; the port it came from: $held)"
else
	fail deploy_bridge_mac "$BRIDGE: MAC '$BRIDGE_MAC' -> '$now_mac', addr_assign_type '$now_type' (3: fixed)"
fi

# --- deploy_no_leftovers
for ((i = 0; i < 50; i++)); do
	n=$(rcli --scan --pattern 'rs:v1:leg:*' | wc -l)
	((n == 0)) && break
	sleep 0.2
done
if ((n == 0)); then
	pass deploy_no_leftovers
else
	fail deploy_no_leftovers "$n leg records left: $(legs_on)"
fi
figure "calls through the containerised cluster: $CALLS placed (1 Speex->PCMU, 4 PCMU pass-through; 2 workers drained and 1 killed under calls)"

# --- deploy_down (every container's log is kept in T_TMP first, for a post-mortem)
for c in $(podman ps -a --filter "label=$LABEL" --format '{{.Names}}'); do
	podman logs "$c" >"$T_TMP/$c.log" 2>&1
done
podman logs "$SIG_CTR" >"$T_TMP/signaler.log" 2>&1
if [[ ${DEPLOY_KEEP:-0} == 1 ]]; then
	skip deploy_down "DEPLOY_KEEP=1"
else
	why=()
	# SIGTERM: the signaler ends its calls and exits 0 within 2 s.
	t0=$(date +%s)
	podman stop -t 10 "$SIG_CTR" >/dev/null 2>&1
	sig_rc=$(podman inspect --format '{{.State.ExitCode}}' "$SIG_CTR" 2>/dev/null)
	[[ $sig_rc == 0 ]] || why+=("the signaler exited ${sig_rc:-?} on SIGTERM")
	(($(date +%s) - t0 <= 5)) || why+=("the signaler took $(($(date +%s) - t0)) s to stop")
	# Started again, then its preStop hook: relayctl signaler-drain, then a wait for the calls
	# to end (none here: the signaler stops by itself at once, which may cut the hook short).
	podman start "$SIG_CTR" >/dev/null 2>&1
	for ((i = 0; i < 100; i++)); do
		[[ $(curl -s -m 1 "http://127.0.0.1:$METRICS_PUB/readyz") == ready ]] && break
		sleep 0.1
	done
	t0=$(date +%s)
	timeout 30 podman exec "$SIG_CTR" rtmp2sip-entrypoint prestop >"$T_TMP/prestop.log" 2>&1
	for ((i = 0; i < 100; i++)); do
		[[ $(podman inspect --format '{{.State.Status}}' "$SIG_CTR") == exited ]] && break
		sleep 0.1
	done
	(($(date +%s) - t0 <= 15)) || why+=("the signaler's prestop hook took $(($(date +%s) - t0)) s without calls")
	podman logs "$SIG_CTR" >"$T_TMP/signaler.log" 2>&1
	grep -q 'relayctl: drain: no new RTMP clients' "$T_TMP/signaler.log" ||
		why+=("prestop: no drain in the signaler log ($(tr '\n' ' ' <"$T_TMP/prestop.log"))")
	st=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$SIG_CTR" 2>/dev/null)
	[[ $st == "exited 0" ]] || why+=("after the drain the signaler is '$st', not 'exited 0'")
	pc down -t 10 >"$T_TMP/down.log" 2>&1
	left=$(podman ps -aq --filter "label=$LABEL" | wc -l)
	((left == 0)) || why+=("$left containers left after down")
	if [[ ${#why[@]} -eq 0 ]]; then
		pass deploy_down
	else
		fail deploy_down "$(printf '%s; ' "${why[@]}")"
	fi
fi
finish
