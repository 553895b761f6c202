#!/usr/bin/env bash
# test_deploy.sh - deploy/ checked for real: the Kubernetes base rendered and inspected, the systemd
# units verified, the entrypoint's defaults, and (with DEPLOY_CONTAINERS=1, which `make
# test-deploy` sets) the image built and a containerised cluster answering calls.
#
# Always (each skipped with the reason when its tool is missing):
#   deploy_k8s_render        `kubectl kustomize deploy/k8s`, the external-redis and plain-rtmp
#                            overlays render
#   deploy_k8s_objects       the rendered objects: signaler Service ports (RTMPS TCP 1936, SIP UDP+TCP,
#                            no plain RTMP), probes on /readyz and /healthz at the metrics port,
#                            downward-API advertised addresses, preStop drain hooks, grace periods
#                            above the drain times, PDBs, the HPA on rtmp2sip_worker_legs, Prometheus
#                            annotations, non-root; no Secret with values; every Secret a pod reads
#                            (volumes, secretKeyRef, the *_FILE paths through their mounts and the
#                            init container's copy) is one `deploy/mksecrets.sh --k8s` makes; CALL_AUTH
#                            from a required Secret key; Redis with requirepass from its Secret on
#                            stdin; reloader sidecars watching the allowed lists and the certificate;
#                            the NetworkPolicies evaluated for each port against signaler, worker,
#                            other pods, the monitoring namespace, other namespaces and the outside;
#                            no RTP_APP, ECHO_APP or ZMQ_INSECURE turned on; the external-redis overlay
#                            drops Redis and its policy and points REDIS_HOST elsewhere; plain-rtmp
#                            opens 1935 in the Deployment, the Service and a policy
#   deploy_systemd_verify    `systemd-analyze verify` on the units (ExecStart pointed at copies of
#                            the built binaries) prints nothing; hardening options, User=rtmp2sip,
#                            ExecReload (SIGHUP), both daemons through the entrypoint
#   deploy_systemd_env       the env examples as the units read them, with the secrets of
#                            deploy/mksecrets.sh and free ports: Redis with the password, the worker
#                            and the signaler find each other (CURVE), RTMPS with the certificate of
#                            the secrets, no plain RTMP, CALL_AUTH=token, SIGHUP reloads, relayctl
#                            authenticates with rtmp2sip.env
#   deploy_entrypoint        rtmp2sip-entrypoint's defaults: a container worker (POD_IP), a
#                            container signaler, a container worker without POD_IP (ZeroMQ and
#                            metrics on the address facing Redis, RTP on the default route's),
#                            mediaworker@3 on a host; values given win; a signaler without CALL_AUTH
#                            refused; CALL_AUTH=token needs CALL_TOKEN_SECRET_FILE, passed on as a file
#   deploy_reloader          `rtmp2sip-entrypoint reloader DIR` (the Kubernetes sidecar), in a PID
#                            namespace of its own: a stand-in signaler gets one SIGHUP when a file
#                            of DIR changes, none before
#   deploy_compose_file      deploy/compose.yaml: the three services, worker stop grace above its
#                            drain timeout, SIGTERM, no fixed worker ids or ports; every *_FILE a
#                            daemon reads is a file deploy/mksecrets.sh makes (run here), mounted
#                            in that service; CALL_AUTH is ${CALL_AUTH:?...}; RTMPS 1936 and SIP
#                            published, no plain RTMP (compose.rtmp.yaml adds it), metrics on the
#                            host's loopback only; Redis with requirepass from its secret on stdin,
#                            on the internal backend network only; no RTP_APP, ECHO_APP or
#                            ZMQ_INSECURE turned on
#
# With DEPLOY_CONTAINERS=1 (root; podman, buildah, podman-compose and debootstrap are installed
# with apt-get when missing), tests/integration/deploy_containers.sh with podman; the same cases
# with docker are test_deploy_docker.sh's (deploy_docker_*). The host's limits are detected and
# worked around as docs/deploy.md says: cgroups in hybrid mode -> the whole test re-runs in a
# private mount namespace with /sys/fs/cgroup/unified unmounted; no CAP_SYS_RESOURCE -> explicit
# --ulimit values. No registry is contacted: the base is BASE_IMAGE when it is in local storage,
# else deploy/mkbase.sh (debootstrap, its root file system cached in /var/tmp/rtmp2sip-base.tar);
# image layers are cached between runs (buildah --layers).
#   deploy_image             the image builds; its size; runs as uid 10001; STOPSIGNAL SIGTERM and
#                            the HEALTHCHECK are in its config; relayctl runs; deploy/mksecrets.sh
#                            makes the secrets with the image's relayctl (modes 0600, owner 10001);
#                            both daemons start with their keys on a read-only root file system
#                            without tmpfs, with no warning about the key file's mode
#   deploy_up_ready          compose without CALL_AUTH refuses to go on; with CALL_AUTH=token and
#                            the secrets, `WORKERS=3 podman-compose up -d`: the signaler's /readyz
#                            answers 200 on the published metrics port (time measured), relayctl
#                            in the signaler container lists 3 live workers, each worker's /readyz
#                            answers 200 (asked inside: their metrics are on the backend network);
#                            the published RTMPS port presents the certificate of the secrets and
#                            no plain RTMP listens; deploy/podman-pin-bridge.sh fixes the bridges'
#                            MACs
#   deploy_healthcheck       `podman healthcheck run` passes on the signaler and a worker
#   deploy_redis_auth        redis-cli without the password gets NOAUTH, with it PONG; the password
#                            is on no command line of the Redis container or of this host; Redis
#                            publishes nothing, is on the backend network only, and a container
#                            on the frontend network cannot reach it (one on the backend can)
#   deploy_zmq_auth          zprobe in a container on the backend network: without a key no reply
#                            from a worker's control or media socket, with the signalers' key pair
#                            HELLO_OK; from the frontend network the ZeroMQ port is not reachable
#   deploy_call_tone         ffmpeg on the host publishes a Speex tone to the published RTMPS port,
#                            call/<SIPp on the host> with a signed token; a player records the far
#                            end: the tone is back
#   deploy_call_auth         a publish without a token is refused; no INVITE reaches SIPp
#   deploy_reload            a new certificate and an allowed list with one more signaler key
#                            renamed into the mounted directories, SIGHUP: the new certificate is
#                            served, the workers re-read their list and take the new key
#   deploy_drain_scale_in    three G.711 calls (over RTMPS, like every call here); the preStop hook
#                            (relayctl drain) run in one worker, then two workers stopped at once
#                            with `podman stop` (SIGTERM: drain;
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
		[[ -z $DEPLOY_AUTO_WHY ]] && DEPLOY_CONTAINERS=1 DEPLOY_AUTO=1
	fi
	export DEPLOY_CONTAINERS DEPLOY_AUTO_WHY DEPLOY_AUTO
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

# The secrets as deploy/mksecrets.sh makes them (with the built relayctl): what the compose file,
# the Kubernetes Secrets and the systemd examples must name.
MADE_SECRETS="$T_TMP/secrets"
if [[ ! -x $BUILD/relayctl ]]; then
	echo "$BUILD/relayctl not built (make)" >"$T_TMP/mksecrets.log"
elif ! RELAYCTL="$BUILD/relayctl" bash "$DEPLOY/mksecrets.sh" --dir "$MADE_SECRETS" --cn localhost \
	>"$T_TMP/mksecrets.log" 2>&1; then
	rm -rf "$MADE_SECRETS"
fi

# ---------------------------------------------------------------- Kubernetes
if ! command -v kubectl >/dev/null 2>&1; then
	skip deploy_k8s_render "kubectl not installed"
	skip deploy_k8s_objects "kubectl not installed"
elif ! kubectl kustomize "$DEPLOY/k8s" >"$T_TMP/k8s.yaml" 2>"$T_TMP/k8s.err" ||
	! kubectl kustomize "$DEPLOY/k8s/overlays/external-redis" >"$T_TMP/k8s-ext.yaml" 2>>"$T_TMP/k8s.err" ||
	! kubectl kustomize "$DEPLOY/k8s/overlays/plain-rtmp" >"$T_TMP/k8s-rtmp.yaml" 2>>"$T_TMP/k8s.err"; then
	fail deploy_k8s_render "$(head -c 400 "$T_TMP/k8s.err")"
	skip deploy_k8s_objects "nothing rendered"
else
	pass deploy_k8s_render
	if ! python3 -c 'import yaml' 2>/dev/null; then
		skip deploy_k8s_objects "python3 yaml module missing (apt-get install python3-yaml)"
	elif [[ ! -d $MADE_SECRETS ]] ||
		! bash "$DEPLOY/mksecrets.sh" --k8s --dir "$MADE_SECRETS" --call-auth token >"$T_TMP/k8s-secrets.yaml" 2>"$T_TMP/k8s.err"; then
		fail deploy_k8s_objects "no Secrets from deploy/mksecrets.sh --k8s: $(tail -n 2 "$T_TMP/mksecrets.log" "$T_TMP/k8s.err" | tr '\n' ' ')"
	elif out=$(python3 - "$T_TMP/k8s.yaml" "$T_TMP/k8s-ext.yaml" "$T_TMP/k8s-rtmp.yaml" "$T_TMP/k8s-secrets.yaml" 2>&1 <<'EOF'
import os, sys, yaml
def load(f):
    return [d for d in yaml.safe_load_all(open(f)) if d]
base, ext, rtmp, secrets = (load(f) for f in sys.argv[1:5])
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
need(not any(d["kind"] == "Secret" for d in base + ext + rtmp), "a Secret with values in the manifests")

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
red = find(base, "Deployment", "rtmp2sip-redis")
need(sig is not None and mw is not None, "signaler and mediaworker Deployments")
if sig and mw:
    spec, c, env = container_checks(sig, 9100, ["SIP_ADVERTISED_IP", "POD_IP"])
    need(c.get("args") == ["signaler"], "signaler: args [signaler]")
    need(spec.get("terminationGracePeriodSeconds", 30) > prestop_deadline + 5,
         "signaler: terminationGracePeriodSeconds above PRESTOP_DEADLINE + 5")
    cp = {(p["containerPort"], p.get("protocol", "TCP")) for p in c["ports"]}
    need({(1936, "TCP"), (5060, "UDP"), (5060, "TCP")} <= cp, "signaler: container ports 1936/TCP, 5060/UDP+TCP")
    need((1935, "TCP") not in cp and env.get("RTMP_PORT", {}).get("value") == "0", "signaler: plain RTMP on in the base")
    need(env.get("RTMPS_PORT", {}).get("value") == "1936", "signaler: RTMPS_PORT 1936")
    need("SIP_TRUSTED_SOURCES" in env, "signaler: SIP_TRUSTED_SOURCES not in its env")
    ca = env.get("CALL_AUTH", {}).get("valueFrom", {}).get("secretKeyRef", {})
    need(ca.get("name") and not ca.get("optional", False), "signaler: CALL_AUTH not from a required Secret key")
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
    need({(1936, "TCP"), (5060, "UDP"), (5060, "TCP")} <= sp, "Service: 1936/TCP, 5060/UDP, 5060/TCP")
    need((1935, "TCP") not in sp, "Service: plain RTMP 1935 in the base")
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
need(red and find(base, "Service", "rtmp2sip-redis"), "base: Redis Deployment + Service")
need(find(ext, "Deployment", "rtmp2sip-redis") is None and find(ext, "Service", "rtmp2sip-redis") is None
     and find(ext, "NetworkPolicy", "rtmp2sip-redis") is None, "external-redis overlay: no Redis objects")
ecm = next(d for d in ext if d["kind"] == "ConfigMap")
need(ecm["data"].get("REDIS_HOST") != "rtmp2sip-redis", "external-redis overlay: REDIS_HOST changed")
emw = find(ext, "Deployment", "rtmp2sip-mediaworker")
need(emw and emw["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == ecm["metadata"]["name"],
     "external-redis overlay: workers read the merged config map")

# --- Secrets: every secret a pod reads, from the objects deploy/mksecrets.sh --k8s makes; every
# *_FILE of a daemon a file of a mounted Secret (or the init container's copy of one).
sec = {d["metadata"]["name"]: d for d in secrets if d.get("kind") == "Secret"}
def secret_key(name, key):
    d = sec.get(name)
    return d is not None and key in (d.get("data") or {})
def file_source(pod, c, path):
    """The (secret, key) behind PATH in container C of POD, or None."""
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(mp):
            continue
        v = vols.get(m["name"], {})
        rest = path[len(mp):]
        if "secret" in v:
            items = v["secret"].get("items")
            key = rest if not items else next((i["key"] for i in items if i["path"] == rest), None)
            return (v["secret"]["secretName"], key)
        if "emptyDir" in v:
            for ic in pod.get("initContainers", []):
                cmd = ic.get("command", [])
                if cmd[:1] == ["install"] and cmd[-1] == path:
                    return file_source(pod, ic, cmd[-2])
    return None
def refs(docs, what):
    out = []
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        pod = d["spec"]["template"]["spec"]
        for v in pod.get("volumes", []):
            if "secret" in v:
                for i in v["secret"].get("items") or []:
                    out.append((d["metadata"]["name"], v["secret"]["secretName"], i["key"], "volume " + v["name"]))
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            for e in c.get("env", []):
                r = e.get("valueFrom", {}).get("secretKeyRef")
                if r:
                    out.append((d["metadata"]["name"], r["name"], r["key"], "env " + e["name"]))
            for e in c.get("env", []):
                if e["name"].endswith("_FILE") and "value" in e:
                    src = file_source(pod, c, e["value"])
                    need(src is not None, "%s: %s=%s is in no mounted Secret" % (d["metadata"]["name"], e["name"], e["value"]))
                    if src:
                        out.append((d["metadata"]["name"], src[0], src[1], e["name"]))
    return out
for dep, name, key, via in refs(base, "base"):
    need(secret_key(name, key), "%s: %s reads %s/%s, which deploy/mksecrets.sh --k8s does not make" % (dep, via, name, key))
if sig and mw and red:
    for d, want in ((sig, ("REDIS_PASSWORD_FILE", "CURVE_SECRET_KEY_FILE", "CURVE_ALLOWED_KEYS_FILE",
                           "RTMPS_CERT_FILE", "RTMPS_KEY_FILE")),
                    (mw, ("REDIS_PASSWORD_FILE", "CURVE_SECRET_KEY_FILE", "CURVE_ALLOWED_KEYS_FILE"))):
        env = {e["name"] for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        for k in want:
            need(k in env, d["metadata"]["name"] + ": no " + k)
    rc = red["spec"]["template"]["spec"]["containers"][0]
    script = " ".join(rc.get("command", []) + rc.get("args", []))
    pw = next((m["mountPath"].rstrip("/") + "/password" for m in rc.get("volumeMounts", [])), "")
    need("requirepass" in script and "redis-server -" in script and pw and "cat " + pw in script
         and file_source(red["spec"]["template"]["spec"], rc, pw) == ("rtmp2sip-redis", "password"),
         "redis: no requirepass from the Secret rtmp2sip-redis on stdin")
    need("--requirepass" not in script, "redis: the password on a command line")
    # The reloader sidecars: a shared process namespace, and they watch what SIGHUP re-reads.
    for d, watched in ((sig, ("CURVE_ALLOWED_KEYS_FILE", "RTMPS_CERT_FILE")), (mw, ("CURVE_ALLOWED_KEYS_FILE",))):
        pod = d["spec"]["template"]["spec"]
        rl = next((c for c in pod["containers"] if c.get("args", [""])[0] == "reloader"), None)
        need(pod.get("shareProcessNamespace") is True and rl is not None, d["metadata"]["name"] + ": no reloader sidecar")
        if rl:
            env = {e["name"]: e.get("value", "") for e in pod["containers"][0].get("env", [])}
            for k in watched:
                need(any(env.get(k, "").startswith(p.rstrip("/") + "/") for p in rl["args"][1:])
                     and file_source(pod, rl, env.get(k, "")) == file_source(pod, pod["containers"][0], env.get(k, "")),
                     "%s: the reloader does not watch %s" % (d["metadata"]["name"], k))

# --- NetworkPolicies, evaluated: who reaches which port.
def selects(sel, labels):
    if sel is None:
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        has, val = e["key"] in labels, labels.get(e["key"])
        op = e["operator"]
        if (op == "In" and val not in e["values"]) or (op == "NotIn" and val in e["values"]) or \
           (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True
def peer_ok(peer, src):
    if "ipBlock" in peer:
        return src["ns"] is None
    if src["ns"] is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], src["ns"]):
            return False
    elif src["ns"] != {"kubernetes.io/metadata.name": "default"}:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], src["pod"])
def allowed(docs, target, port, proto, src):
    pols = [d for d in docs if d["kind"] == "NetworkPolicy" and selects(d["spec"]["podSelector"], target)
            and "Ingress" in d["spec"].get("policyTypes", ["Ingress"])]
    if not pols:
        return True
    for p in pols:
        for r in p["spec"].get("ingress") or []:
            pm = not r.get("ports") or any(
                x.get("protocol", "TCP") == proto and
                (x.get("port") is None or x["port"] == port or x["port"] <= port <= x.get("endPort", x["port"]))
                for x in r["ports"])
            if pm and (not r.get("from") or any(peer_ok(f, src) for f in r["from"])):
                return True
    return False
def pod(component):
    return {"app.kubernetes.io/name": "rtmp2sip", "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "rtmp2sip"}
ns = {"kubernetes.io/metadata.name": "default"}
SRC = {"signaler": {"ns": ns, "pod": pod("signaler")}, "mediaworker": {"ns": ns, "pod": pod("mediaworker")},
       "pod in the namespace": {"ns": ns, "pod": {"app": "other"}},
       "another rtmp2sip pod": {"ns": ns, "pod": pod("debug")},
       "monitoring": {"ns": {"kubernetes.io/metadata.name": "monitoring"}, "pod": {"app": "prometheus"}},
       "other namespace": {"ns": {"kubernetes.io/metadata.name": "other"}, "pod": pod("signaler")},
       "outside": {"ns": None, "pod": {}}}
EXPECT = [  # target, port, protocol, who may, who may not
    ("redis", 6379, "TCP", ["signaler", "mediaworker"],
     ["another rtmp2sip pod", "pod in the namespace", "other namespace", "outside"]),
    ("mediaworker", 7001, "TCP", ["signaler"],
     ["mediaworker", "another rtmp2sip pod", "pod in the namespace", "monitoring", "other namespace", "outside"]),
    ("mediaworker", 7002, "TCP", ["signaler"], ["pod in the namespace", "outside"]),
    ("mediaworker", 20000, "UDP", ["outside"], []),
    ("mediaworker", 29999, "UDP", ["outside"], []),
    ("mediaworker", 9101, "TCP", ["pod in the namespace", "monitoring"], ["other namespace", "outside"]),
    ("signaler", 1936, "TCP", ["outside"], []),
    ("signaler", 5060, "UDP", ["outside"], []),
    ("signaler", 5060, "TCP", ["outside"], []),
    ("signaler", 1935, "TCP", [], ["outside", "pod in the namespace"]),
    ("signaler", 9100, "TCP", ["pod in the namespace", "monitoring"], ["other namespace", "outside"]),
]
for target, port, proto, yes, no in EXPECT:
    for who in yes:
        need(allowed(base, pod(target), port, proto, SRC[who]), "NetworkPolicy: %s cannot reach %s %d/%s" % (who, target, port, proto))
    for who in no:
        need(not allowed(base, pod(target), port, proto, SRC[who]), "NetworkPolicy: %s reaches %s %d/%s" % (who, target, port, proto))
# plain-rtmp overlay: RTMP on, in the Deployment, the Service and the policies.
rsig = find(rtmp, "Deployment", "rtmp2sip-signaler")
rsvc = find(rtmp, "Service", "rtmp2sip-signaler")
renv = {e["name"]: e.get("value") for e in rsig["spec"]["template"]["spec"]["containers"][0]["env"]} if rsig else {}
need(renv.get("RTMP_PORT") == "1935" and rsvc and any(p["port"] == 1935 for p in rsvc["spec"]["ports"])
     and allowed(rtmp, pod("signaler"), 1935, "TCP", SRC["outside"]), "plain-rtmp overlay: no RTMP 1935 open")
# Test apps and insecure ZeroMQ stay off everywhere.
for docs in (base, ext, rtmp):
    for d in docs:
        envs = []
        if d["kind"] == "ConfigMap":
            envs = list((d.get("data") or {}).items())
        elif d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                envs += [(e["name"], e.get("value", "")) for e in c.get("env", [])]
        for k, v in envs:
            need(k not in ("RTP_APP", "ECHO_APP", "ZMQ_INSECURE") or v in ("0", ""),
                 "%s %s sets %s=%s" % (d["kind"], d["metadata"]["name"], k, v))
if bad:
    print("; ".join(bad))
    sys.exit(1)
print("%d objects: %s" % (len(base), ", ".join(sorted({d["kind"] for d in base}))))
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
			RestrictAddressFamilies= KillSignal=SIGTERM TimeoutStopSec= EnvironmentFile=-/etc/rtmp2sip/ \
			'ExecReload=/bin/kill -HUP $MAINPID' User=rtmp2sip \
			ExecStart=/usr/local/lib/rtmp2sip/rtmp2sip-entrypoint; do
			grep -qF -- "$opt" <(grep -v '^#' "$f") || why+=("$(basename "$f"): no $opt")
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

# The env examples as a host runs them (the units' EnvironmentFile= order, through the entrypoint),
# secrets from deploy/mksecrets.sh, ports moved to free ones: Redis wants the password, the worker
# and the signaler find each other over CURVE, RTMPS answers with the certificate of the secrets,
# no plain RTMP listens, CALL_AUTH is chosen, SIGHUP (ExecReload) reloads, relayctl authenticates.
sysd_env() { # sysd_env FILE...: the files, paths to $MADE_SECRETS, ports free, to the loopback
	cat "$@" | sed -e "s#/etc/rtmp2sip/secrets#$MADE_SECRETS#g" -e "s/^REDIS_PORT=.*/REDIS_PORT=$SD_REDIS/" \
		-e "s/^RTMPS_PORT=.*/RTMPS_PORT=$SD_RTMPS/" -e "s/^SIP_PORT=.*/SIP_PORT=$SD_SIP/" \
		-e "s/^METRICS_PORT=.*/METRICS_PORT=$SD_METRICS/" -e "s/^RTMP_BIND=.*/RTMP_BIND=127.0.0.1/"
}
if ! command -v redis-server >/dev/null || ! command -v openssl >/dev/null; then
	skip deploy_systemd_env "redis-server or openssl not installed"
elif [[ ! -d $MADE_SECRETS || ! -x $BUILD/signaler ]]; then
	fail deploy_systemd_env "no secrets from deploy/mksecrets.sh or no build: $(tail -n 2 "$T_TMP/mksecrets.log" | tr '\n' ' ')"
else
	sd="$T_TMP/sysd"
	mkdir -p "$sd/bin" "$sd/redis"
	cp "$BUILD/signaler" "$BUILD/mediaworker" "$BUILD/relayctl" "$sd/bin/"
	cp "$DEPLOY/entrypoint.sh" "$sd/bin/rtmp2sip-entrypoint"
	SD_REDIS=$(free_port) SD_RTMPS=$(free_port) SD_SIP=$(free_port) SD_METRICS=$(free_port)
	why=()
	(umask 077 && printf 'requirepass %s\n' "$(cat "$MADE_SECRETS/redis.pass")" >"$sd/redis.conf")
	spawn "$sd/redis.log" redis-server "$sd/redis.conf" --port "$SD_REDIS" --bind 127.0.0.1 \
		--dir "$sd/redis" --save '' --appendonly no
	wait_port "$SD_REDIS" "$SPAWNED_PID" 10 || why+=("redis-server did not start: $(tail -n 1 "$sd/redis.log")")
	sysd_env "$DEPLOY/systemd/rtmp2sip.env.example" >"$sd/rtmp2sip.env"
	sysd_env "$DEPLOY/systemd/signaler.env.example" >"$sd/signaler.env"
	sysd_env "$DEPLOY/systemd/mediaworker.env.example" >"$sd/mediaworker.env"
	# run_unit NAME ENVFILE [VAR=value...]: the entrypoint as the unit starts it, in the background.
	run_unit() {
		local name=$1 envf=$2
		shift 2
		# shellcheck disable=SC2016 # expanded by the inner shell
		spawn "$sd/$name.log" env -i PATH=/usr/bin:/bin "$@" bash -c \
			'set -a; . "$1/rtmp2sip.env"; . "$2"; set +a; exec "$1/bin/rtmp2sip-entrypoint" "$3"' \
			_ "$sd" "$envf" "${name%%@*}"
		SD_PID[$name]=$SPAWNED_PID
	}
	declare -A SD_PID=()
	run_unit mediaworker@1 "$sd/mediaworker.env" WORKER_INSTANCE=1 METRICS_PORT_BASE=$((SD_METRICS + 100)) \
		RTP_PORT_BASE=$((40000 + RANDOM % 5000 * 2))
	run_unit signaler "$sd/signaler.env"
	wait_log "$sd/signaler.log" 'mediaworker up: 1 live' 15 ||
		why+=("the signaler found no worker: $(grep -iE 'error|warn' "$sd/signaler.log" "$sd/mediaworker@1.log" | tail -n 2 | tr '\n' ' ')")
	crt=$(openssl s_client -connect "127.0.0.1:$SD_RTMPS" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
	[[ -n $crt && $crt == "$(openssl x509 -noout -fingerprint -sha256 <"$MADE_SECRETS/tls/rtmps.crt")" ]] ||
		why+=("RTMPS on $SD_RTMPS does not present the certificate of the secrets")
	grep -q 'rtmp: listening' "$sd/signaler.log" && why+=("plain RTMP listens: $(grep -m1 'rtmp: listening' "$sd/signaler.log")")
	grep -qE 'readable by others|refused until CALL_AUTH' "$sd/signaler.log" "$sd/mediaworker@1.log" &&
		why+=("$(grep -hE 'readable by others|refused until CALL_AUTH' "$sd/signaler.log" "$sd/mediaworker@1.log" | head -n 1)")
	tr '\0' '\n' <"/proc/${SD_PID[signaler]}/environ" 2>/dev/null | grep -qx CALL_AUTH=token ||
		why+=("the signaler runs without CALL_AUTH=token")
	kill -HUP "${SD_PID[signaler]}" "${SD_PID[mediaworker@1]}" 2>/dev/null
	wait_log "$sd/signaler.log" 'SIGHUP' 5 || why+=("no SIGHUP reload in the signaler log")
	# shellcheck disable=SC2016 # expanded by the inner shell
	out=$(env -i PATH=/usr/bin:/bin bash -c 'set -a; . "$1"; set +a; exec "$2" workers' _ "$sd/rtmp2sip.env" \
		"$sd/bin/relayctl" 2>&1) && [[ $out == *mw-1* ]] || why+=("relayctl with rtmp2sip.env: $out")
	out=$(redis-cli -p "$SD_REDIS" ping 2>&1)
	[[ $out == *NOAUTH* ]] || why+=("Redis without the password: $out")
	kill "${SD_PID[signaler]}" "${SD_PID[mediaworker@1]}" 2>/dev/null
	if [[ ${#why[@]} -eq 0 ]]; then
		pass deploy_systemd_env
	else
		fail deploy_systemd_env "$(printf '%s; ' "${why[@]}")"
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
	RTP_ADVERTISED_IP=10.1.2.3 METRICS_BIND=10.1.2.3 REDIS_HOST=redis "WORKER_ID=$(tr -c 'A-Za-z0-9._\n-' '-' </proc/sys/kernel/hostname)"; do
	grep -qx -- "$kv" <<<"$out" || why+=("container worker: no $kv")
done
out=$(EP_CMD=signaler ep_env RTMP2SIP_CONTAINER=1 POD_IP=10.1.2.4 REDIS_HOST=r1 RTMP_BIND= CALL_AUTH=none)
for kv in RTMP_BIND=0.0.0.0 SIP_ADVERTISED_IP=10.1.2.4 REDIS_HOST=r1 METRICS_BIND=10.1.2.4 CALL_AUTH=none; do
	grep -qx -- "$kv" <<<"$out" || why+=("container signaler: no $kv")
done
# Two networks and no POD_IP (compose): ZeroMQ and metrics on the address facing Redis (loopback
# here), RTP advertised on the default route's source address.
out=$(EP_CMD=mediaworker ep_env RTMP2SIP_CONTAINER=1 REDIS_HOST=127.0.0.1)
for kv in WORKER_CTL_BIND=tcp://127.0.0.1:7001 WORKER_MEDIA_BIND=tcp://127.0.0.1:7002 METRICS_BIND=127.0.0.1; do
	grep -qx -- "$kv" <<<"$out" || why+=("container worker facing Redis on 127.0.0.1: no $kv")
done
src=$(ip -4 route get 198.51.100.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
if [[ -n $src ]]; then
	grep -qx "RTP_ADVERTISED_IP=$src" <<<"$out" ||
		why+=("container worker: RTP_ADVERTISED_IP not the default route's source $src: $(grep RTP_ADV <<<"$out")")
fi
# The signaler does not start without CALL_AUTH, nor with CALL_AUTH=token and no secret; the
# token secret's file goes to the signaler as a file (it reads it itself), never as its value.
out=$(EP_CMD=signaler ep_env RTMP2SIP_CONTAINER=1 POD_IP=10.1.2.4)
[[ $out == *"CALL_AUTH is not set"* && $out != signaler* ]] || why+=("a signaler without CALL_AUTH started: $out")
printf 'tok3n-s3cret' >"$e/token"
out=$(EP_CMD=signaler ep_env CALL_AUTH=token CALL_TOKEN_SECRET_FILE="$e/token")
grep -qx "CALL_TOKEN_SECRET_FILE=$e/token" <<<"$out" || why+=("CALL_TOKEN_SECRET_FILE not passed on: $out")
grep -q '^CALL_TOKEN_SECRET=' <<<"$out" && why+=("the token secret put in the signaler's environment")
out=$(EP_CMD=signaler ep_env CALL_AUTH=token)
[[ $out == *"CALL_AUTH=token needs CALL_TOKEN_SECRET_FILE"* && $out != signaler* ]] ||
	why+=("CALL_AUTH=token without a secret started: $out")
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

# The reloader sidecar: in a PID namespace of its own (as a pod's shared one; no other signaler
# of this machine is in it), a stand-in signaler that logs its SIGHUPs, a watched directory
# changed once: one SIGHUP, none before.
if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null; then
	skip deploy_reloader "needs root and unshare (a PID namespace of its own)"
else
	mkdir -p "$e/rl/watched"
	printf 'one\n' >"$e/rl/watched/allowed"
	printf '#!/bin/bash\ntrap '"'"'echo HUP >>"$0.hups"'"'"' HUP\nwhile :; do sleep 0.1; done\n' >"$e/rl/signaler"
	chmod +x "$e/rl/signaler"
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 20 unshare -pf --mount-proc env -i PATH=/usr/bin:/bin RELOAD_INTERVAL=1 bash -c '
		"$1/rl/signaler" &
		bash "$1/rtmp2sip-entrypoint" reloader "$1/rl/watched" >"$1/rl/reloader.log" 2>&1 &
		sleep 2.5
		[[ -e $1/rl/signaler.hups ]] && echo "SIGHUP without a change"
		printf "two\n" >"$1/rl/watched/allowed"
		for ((i = 0; i < 40; i++)); do
			[[ -e $1/rl/signaler.hups ]] && break
			sleep 0.1
		done
		sleep 2
		echo "hups: $(wc -l <"$1/rl/signaler.hups" 2>/dev/null)"' _ "$e" >"$e/rl/out" 2>&1
	if [[ $(cat "$e/rl/out") == "hups: 1" ]] && grep -q 'SIGHUP to signaler' "$e/rl/reloader.log"; then
		pass deploy_reloader
	else
		fail deploy_reloader "$(tr '\n' ' ' <"$e/rl/out"); reloader: $(tr '\n' ' ' <"$e/rl/reloader.log")"
	fi
fi

# ---------------------------------------------------------------- compose file
if ! python3 -c 'import yaml' 2>/dev/null; then
	skip deploy_compose_file "python3 yaml module missing (apt-get install python3-yaml)"
elif [[ ! -d $MADE_SECRETS ]]; then
	fail deploy_compose_file "deploy/mksecrets.sh made nothing: $(tail -n 2 "$T_TMP/mksecrets.log" | tr '\n' ' ')"
elif out=$(python3 - "$DEPLOY/compose.yaml" "$DEPLOY/compose.rtmp.yaml" "$MADE_SECRETS" 2>&1 <<'EOF'
import os, re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
rtmp = yaml.safe_load(open(sys.argv[2]))
made = sys.argv[3]
s = c["services"]
bad = []
def need(cond, why):
    if not cond:
        bad.append(why)
def env_of(svc):
    e = svc.get("environment", [])
    if isinstance(e, dict):
        return {k: str(v) for k, v in e.items()}
    return dict(x.split("=", 1) if "=" in x else (x, None) for x in e)
def secs(v):
    v = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(v))
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", v)
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
def dflt(v):
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", v or "")
# where: the file of deploy/secrets (as mksecrets.sh made them) behind a path in a container
def where(svc, path):
    if path.startswith("/run/secrets/"):
        name = path[len("/run/secrets/"):]
        if name not in (svc.get("secrets") or []):
            return None
        return dflt(c["secrets"][name]["file"])
    for v in svc.get("volumes") or []:
        src, dst = dflt(v).split(":")[:2]
        if path.startswith(dst + "/"):
            return src + path[len(dst):]
    return None
def made_file(f):
    return f is not None and f.startswith("./secrets/") and os.path.isfile(os.path.join(made, f[len("./secrets/"):]))
for n in ("redis", "signaler", "mediaworker"):
    need(n in s, "no service " + n)
if not bad:
    w, g, r = env_of(s["mediaworker"]), env_of(s["signaler"]), s["redis"]
    drain = int(dflt(w.get("WORKER_DRAIN_TIMEOUT")) or 60)
    need(secs(s["mediaworker"].get("stop_grace_period", "10s")) > drain + 3,
         "mediaworker stop_grace_period not above WORKER_DRAIN_TIMEOUT + 3")
    for n in ("signaler", "mediaworker"):
        need(s[n].get("stop_signal") == "SIGTERM", n + ": stop_signal SIGTERM")
        need(s[n].get("command") == [n], n + ": command [" + n + "]")
    for k in ("WORKER_ID", "METRICS_PORT", "WORKER_CTL_BIND"):
        need(not w.get(k), "mediaworker sets " + k + ": replicas would share it")
    need("ports" not in s["mediaworker"], "mediaworker publishes ports: replicas would clash")
    need("replicas" in s["mediaworker"].get("deploy", {}), "mediaworker: no deploy.replicas")
    # Secrets: every *_FILE a daemon reads is a file mksecrets.sh makes, mounted in that service.
    for n, e in (("signaler", g), ("mediaworker", w)):
        for k in ("REDIS_PASSWORD_FILE", "CURVE_SECRET_KEY_FILE", "CURVE_ALLOWED_KEYS_FILE"):
            need(e.get(k), n + ": no " + k)
        for k, v in e.items():
            if k.endswith("_FILE") and v:
                need(made_file(where(s[n], v)), "%s: %s=%s is no file of deploy/mksecrets.sh mounted there" % (n, k, v))
    for k in ("RTMPS_CERT_FILE", "RTMPS_KEY_FILE", "CALL_TOKEN_SECRET_FILE"):
        need(g.get(k), "signaler: no " + k)
    for name, d in (c.get("secrets") or {}).items():
        need(made_file(dflt(d.get("file"))), "secret %s: %s is no file of deploy/mksecrets.sh" % (name, d.get("file")))
        need("${RTMP2SIP_SECRETS:-./secrets}/" in d.get("file", ""), "secret %s: not under ${RTMP2SIP_SECRETS:-./secrets}" % name)
    # Who may call: compose refuses to go on without a choice.
    need(re.fullmatch(r"\$\{CALL_AUTH:\?[^}]+\}", g.get("CALL_AUTH") or ""), "signaler: CALL_AUTH is not ${CALL_AUTH:?...}")
    need("SIP_TRUSTED_SOURCES" in g, "signaler: SIP_TRUSTED_SOURCES not passed on")
    # RTMPS published, plain RTMP off unless compose.rtmp.yaml; metrics on the host's loopback only.
    pp = [str(p) for p in s["signaler"].get("ports", [])]
    for p in (":1936/tcp", ":5060/udp", ":5060/tcp"):
        need(any(x.endswith(p) for x in pp), "signaler does not publish " + p)
    need(not any(x.endswith(":1935/tcp") or x.endswith(":1935") for x in pp), "signaler publishes plain RTMP 1935 by default")
    need(g.get("RTMP_PORT") == "0" and g.get("RTMPS_PORT") == "1936", "signaler: not RTMP_PORT=0 RTMPS_PORT=1936")
    for x in pp:
        if x.endswith(":9100/tcp") or x.endswith(":9100"):
            need(x.startswith("127.0.0.1:"), "signaler metrics published beyond the host's loopback: " + x)
    rg = rtmp["services"]["signaler"]
    need(env_of(rg).get("RTMP_PORT") == "1935" and any(str(x).endswith(":1935/tcp") for x in rg.get("ports", [])),
         "compose.rtmp.yaml: no RTMP_PORT=1935 with 1935/tcp published")
    # Redis: a password from the secret, on no command line; the backend network only.
    cmd = " ".join(r.get("command") or [])
    need("requirepass" in cmd and "/run/secrets/redis_password" in cmd and "redis_password" in (r.get("secrets") or []),
         "redis: no requirepass from the redis_password secret")
    need("--requirepass" not in cmd and "redis-server -" in cmd, "redis: the password must come in on stdin, not argv")
    need("ports" not in r, "redis publishes ports")
    nets = c.get("networks") or {}
    need((nets.get("backend") or {}).get("internal") is True, "no internal backend network")
    need(r.get("networks") == ["backend"], "redis: on networks %s, not the backend only" % r.get("networks"))
    for n in ("signaler", "mediaworker"):
        need(sorted(s[n].get("networks") or []) == ["backend", "frontend"], n + ": not on backend and frontend")
    # Test apps and insecure ZeroMQ stay off.
    for n, svc in list(s.items()) + [("compose.rtmp.yaml signaler", rg)]:
        for k in ("RTP_APP", "ECHO_APP", "ZMQ_INSECURE"):
            v = env_of(svc).get(k)
            need(k not in env_of(svc) or v in ("0", ""), "%s sets %s=%s" % (n, k, v))
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
); then
	pass deploy_compose_file
else
	fail deploy_compose_file "$out"
fi

# ---------------------------------------------------------------- containers (podman)
ENGINE=podman
# shellcheck source=tests/integration/deploy_containers.sh
. "$(dirname "${BASH_SOURCE[0]}")/deploy_containers.sh"
