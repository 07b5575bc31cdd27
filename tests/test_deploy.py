"""deploy/, read (no Docker or Kubernetes here): every command, port, probe path, variable name and value in the
compose file and the manifests is one the code reads and accepts, and agrees with the Dockerfile."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (uvicorn[standard] brings it) has no stubs here

from graph.cli import _parser
from graph.config import Settings
from graph.sandbox import DemoCredentials
from tests.test_dockerfile import exec_form, instructions, only, stages

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
IMAGE_UID = 10001


class Recording(Mapping[str, str]):
    """An environment that notes every name it is asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.data = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.data[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return self.data.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def names_in_config() -> set[str]:
    """The names graph/config.py and graph/keyfiles.py read: spelled out, and NAME_FILE for each key read through
    ``secret`` / ``optional_secret``."""
    text = "".join((ROOT / "graph" / name).read_text(encoding="utf-8") for name in ("config.py", "keyfiles.py"))
    names = set(re.findall(r"\b(?:GRAPH|ALIPAY)_[A-Z_]+[A-Z]\b", text))
    secrets = re.findall(r"\b(?:optional_)?secret\(env, \"([A-Z_]+)\"\)", text)
    assert "ALIPAY_APP_PRIVATE_KEY" in secrets
    return names | {f"{name}_FILE" for name in secrets}


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return stages(instructions((ROOT / "Dockerfile").read_text(encoding="utf-8")))[-1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def interpolated(name: str, value: str) -> str:
    """Compose's ``${NAME:?message}``: taken from the operator's environment, under the same name (a test app id)."""
    for variable in re.findall(r"\$\{(\w+)", value):
        assert variable == name == "ALIPAY_APP_ID"
    return re.sub(r"\$\{[^}]*\}", "2021000000000000", value)


def check_command(command: list[str], dockerfile: list[tuple[str, str]]) -> int:
    """The Dockerfile's own start command, parsed as the CLI would; returns the port it serves on."""
    assert command == exec_form(only(dockerfile, "CMD"))
    args = _parser().parse_args(command[3:])
    assert (args.command, args.host, args.demo, args.workers) == ("serve", "0.0.0.0", False, 1)  # noqa: S104
    assert str(args.port) == only(dockerfile, "EXPOSE")
    return int(args.port)


def check_environment(
    environment: Mapping[str, str], files: Mapping[str, str], tmp_path: Path, demo_credentials: DemoCredentials
) -> Settings:
    """Every name is one the code reads; the values, files standing in for the mounted ones, are accepted."""
    unknown = set(environment) - names_in_config()
    assert unknown == set(), f"variables the code never reads: {sorted(unknown)}"
    contents = {
        "ALIPAY_APP_PRIVATE_KEY_FILE": demo_credentials.app_private_key_pem,
        "ALIPAY_PUBLIC_KEY_FILE": demo_credentials.alipay_public_key_pem,
        "GRAPH_API_KEYS_FILE": "k-deploy-test-1f2e3d4c5b6a\n",
    }
    assert set(files) == set(contents)
    values = dict(environment)
    for name, text in contents.items():
        local = tmp_path / Path(files[name]).name
        local.write_text(text, encoding="utf-8")
        values[name] = str(local)
    env = Recording(values)
    settings = Settings.from_environ(env)
    assert set(environment) <= env.asked
    assert env.asked <= names_in_config()  # the regex misses nothing the code asks for
    assert settings.api_keys == {"k-deploy-test-1f2e3d4c5b6a"}
    assert settings.cache_url.startswith("redis://")
    return settings


def test_compose(
    compose: dict[str, Any], dockerfile: list[tuple[str, str]], tmp_path: Path, demo_credentials: DemoCredentials
) -> None:
    services = compose["services"]
    instances = {name: service for name, service in services.items() if "build" in service}
    assert len(instances) == 2
    assert services["redis"]["image"].startswith("redis:")
    for service in instances.values():
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"
        port = check_command(service["command"], dockerfile)
        [mapping] = service["ports"]
        assert mapping.rsplit(":", 1)[1] == str(port)
        environment = {name: interpolated(name, str(value)) for name, value in service["environment"].items()}
        # Keys as files: each *_FILE is a secret compose mounts at /run/secrets/NAME, from a file, never inline.
        files = {name: value for name, value in environment.items() if name.endswith("_FILE")}
        mounted = {f"/run/secrets/{name}" for name in service["secrets"]}
        assert set(files.values()) == mounted
        assert all("file" in compose["secrets"][name] for name in service["secrets"])
        assert not {"ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "GRAPH_API_KEYS"} & set(environment)
        settings = check_environment(environment, files, tmp_path, demo_credentials)
        assert urlsplit(settings.cache_url).hostname in services  # the compose file's own Redis
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert int(service["stop_grace_period"].rstrip("s")) > settings.shutdown_grace_s


def test_the_keys_stay_out_of_git_and_the_build_context() -> None:
    # compose builds from the repository's root, where deploy/secrets/ holds the keys it mounts.
    assert "deploy" in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_kubernetes(
    manifests: dict[tuple[str, str], dict[str, Any]],
    dockerfile: list[tuple[str, str]],
    tmp_path: Path,
    demo_credentials: DemoCredentials,
) -> None:
    kinds = {kind for kind, _ in manifests}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds
    deployment = manifests[("Deployment", "alipay-graph")]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [container] = pod["spec"]["containers"]
    port = check_command(container["command"], dockerfile)
    ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
    assert ports == {"http": port}
    # Probes: liveness on /healthz, readiness on /readyz, on the container's port.
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert all(probe["port"] in ("http", port) for probe in probes.values())
    assert "cpu" in container["resources"]["requests"]
    assert "memory" in container["resources"]["limits"]
    # The image's user, able to read the Secret's files through the group.
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == security["fsGroup"] == IMAGE_UID
    assert only(dockerfile, "USER") == f"{IMAGE_UID}:{IMAGE_UID}"
    # Keys from the Secret, as files named by the *_FILE variables.
    environment = {entry["name"]: str(entry["value"]) for entry in container["env"]}
    [mount] = [mount for mount in container["volumeMounts"] if mount["name"] == "keys"]
    [volume] = [volume for volume in pod["spec"]["volumes"] if volume["name"] == "keys"]
    items = {item["path"] for item in volume["secret"]["items"]}
    files = {name: value for name, value in environment.items() if name.endswith("_FILE")}
    assert {f"{mount['mountPath']}/{path}" for path in items} == set(files.values())
    assert volume["secret"]["defaultMode"] == 0o440
    settings = check_environment(environment, files, tmp_path, demo_credentials)
    # The Redis reference: a Service of these manifests, on the port the URL names.
    redis_url = urlsplit(settings.cache_url)
    redis = manifests[("Service", str(redis_url.hostname))]
    assert [entry["port"] for entry in redis["spec"]["ports"]] == [redis_url.port or 6379]
    # Stopping: the preStop pause and the service's own grace fit in the pod's.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > pause + settings.shutdown_grace_s
    # The Service, the budget and the autoscaler all point at these pods.
    service = manifests[("Service", "alipay-graph")]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [entry["targetPort"] for entry in service["spec"]["ports"]] == ["http"]
    budget = manifests[("PodDisruptionBudget", "alipay-graph")]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    autoscaler = manifests[("HorizontalPodAutoscaler", "alipay-graph")]
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "alipay-graph",
    }
    assert autoscaler["spec"]["minReplicas"] >= budget["spec"]["minAvailable"] + 1


async def test_probe_paths_are_served(graph_url: str) -> None:
    async with httpx.AsyncClient(base_url=graph_url, timeout=10) as http:
        for path in ("/healthz", "/readyz"):
            assert (await http.get(path)).status_code == 200
