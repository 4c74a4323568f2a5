"""The Dockerfile and the Kubernetes example cannot be built or applied here, so check that they
parse and that their ports, paths and commands agree with each other and with the config."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from polyroute.cli import build_parser
from polyroute.config import validate_config

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "kubernetes" / "polyroute.yaml"


def _dockerfile() -> dict[str, list[str]]:
    """Instruction → its arguments, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        found.setdefault(word.upper(), []).append(rest.strip())
    return found


def _docs() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(K8S.read_text())}


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_dockerfile_parses_and_serves_on_its_exposed_port() -> None:
    found = _dockerfile()
    assert found["FROM"][0].startswith("python:3.11")
    cmd = yaml.safe_load(found["CMD"][-1])  # the exec form is a JSON (and so YAML) list
    assert cmd[:2] == ["polyroute", "serve"]
    args = build_parser().parse_args(cmd[1:])  # the CLI accepts exactly these flags
    assert args.port == int(found["EXPOSE"][0])
    assert "/healthz" in found["HEALTHCHECK"][0] and f":{args.port}/" in found["HEALTHCHECK"][0]
    # torch comes from the CPU index before the project, so pip never pulls a CUDA build
    runs = found["RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert torch < project and "whl/cpu" in runs[torch]
    # the router the image trains is where the example config looks for it
    train = shlex.split(next(r for r in runs if "polyroute train" in r))
    router_dir = _flag(train, "--out")
    cfg = yaml.safe_load(_docs()["ConfigMap"]["data"]["gateway.yaml"])
    assert cfg["router"]["path"] == router_dir


def test_kubernetes_example_agrees_with_itself_and_the_config() -> None:
    docs = _docs()
    assert set(docs) == {"ConfigMap", "Secret", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = container["ports"][0]
    raw = yaml.safe_load(docs["ConfigMap"]["data"]["gateway.yaml"])
    secret_env = docs["Secret"]["stringData"]
    # The config validates, with the Secret's variables as the environment.
    config = validate_config(raw, source="ConfigMap polyroute-config")
    argv = container["command"]
    args = build_parser().parse_args(argv[1:])
    assert int(_flag(argv, "--port")) == port["containerPort"] == config.server.port == args.port
    # The config file the command reads is the one the ConfigMap volume mounts.
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert Path(_flag(argv, "--config")) == Path(mount["mountPath"]) / "gateway.yaml"
    # Readiness asks /healthz on the named container port; the Service targets that port.
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] == port["name"]
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"][
        "matchLabels"]
    # The replicas share one PostgreSQL store and one Redis (external services).
    assert config.store.url is not None and config.shared is not None
    assert "PGPASSWORD" in secret_env and "@" in config.store.url.split("//", 1)[1]
    # Every backend key the config names comes from the Secret.
    wanted = {b.api_key_env for b in config.backends if b.api_key_env}
    assert wanted and wanted <= set(secret_env)
    assert container["envFrom"][0]["secretRef"]["name"] == docs["Secret"]["metadata"]["name"]
    # Shutdown: the pod's grace period outlasts the gateway's own drain.
    assert pod["terminationGracePeriodSeconds"] > config.server.shutdown_timeout


@pytest.mark.parametrize("path", [DOCKERFILE, K8S])
def test_deploy_files_exist_and_name_no_real_secret(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"(sk-|nvapi-)[A-Za-z0-9]{10,}", text)
