"""deploy/k8s, read and rendered without a cluster.

The base and each overlay are rendered with `kubectl kustomize` (kubectl's built-in Kustomize); every
rendered object, and every manifest file, must validate strictly (unknown fields fail) against the
Kubernetes schema that kubernetes-validate ships for the versions below. The rendered objects are then
checked against the code: each service's settings (deployment.py), its CLI, its port (docs/architecture.md),
and what a graceful shutdown needs.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import typer
import yaml
from cryptography.fernet import Fernet
from deployment import LOCAL_MARKERS, ROOT, SERVICES, Service, is_secret

from gatehouse_platform.app import LIFESPAN_STOP_SECONDS
from gatehouse_platform.cli import GRACEFUL_SHUTDOWN_SECONDS
from gatehouse_platform.consumer import EventConsumer

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
TARGETS = ("base", *OVERLAYS)
# The oldest Kubernetes we support (the preStop `sleep` handler is on by default since 1.30) and the
# newest kubernetes-validate (pinned in pyproject.toml) ships.
KUBERNETES_VERSIONS = ("1.33", "1.37")
NAMESPACE = "gatehouse"
UID = 10001
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
IMAGE_REPOSITORY = "gatehouse/{service}"
# Secrets a deployment may leave out: the Secret reference is optional.
OPTIONAL_SECRETS = {
    "AUTH_SIGNING_KEY_PEM",
    "AUTH_GOOGLE_CLIENT_SECRET",
    "AUTH_GITHUB_CLIENT_SECRET",
    "BILLING_STRIPE_WEBHOOK_SECRET_PREVIOUS",
    "NOTIFICATION_SMTP_USERNAME",
    "NOTIFICATION_SMTP_PASSWORD",
}
# Names that hold a secret beyond deployment.py's list (a password, a private key, a signing secret).
SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|_PEM$|(^|_)KEY$")
# The command each kind of workload runs (the first argument of the service's console script).
COMMANDS = {"api": "serve", "worker": "worker", "beat": "beat", "migration": "migrate"}
CONSUMER_STOP_GRACE = inspect.signature(EventConsumer.stop).parameters["grace_period"].default
GATEWAY_UPSTREAMS = {
    "auth": "auth-service",
    "billing": "billing-service",
    "notifications": "notification-service",
    "web": "web",
}


# --- rendering -------------------------------------------------------------------------------------


def target_dir(target: str) -> Path:
    return K8S / "base" if target == "base" else K8S / "overlays" / target


@functools.cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH: these tests render deploy/k8s with `kubectl kustomize` "
            "(Kustomize is built into kubectl). Install kubectl; the tests do not skip without it."
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(target_dir(target))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"`kubectl kustomize {target_dir(target)}` failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def manifest_files() -> list[Path]:
    """Every YAML file under deploy/k8s that holds Kubernetes objects (not Kustomize's own files)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def ident(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def labels(obj: dict[str, Any]) -> dict[str, str]:
    labels_: dict[str, str] = obj["metadata"].get("labels", {})
    return labels_


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] == "CronJob":
        template: dict[str, Any] = obj["spec"]["jobTemplate"]["spec"]["template"]
        return template
    return obj.get("spec", {}).get("template")


def workloads(objects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [obj for obj in objects if pod_template(obj) is not None]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    template = pod_template(obj)
    assert template is not None, f"{ident(obj)} has no pod template"
    spec: dict[str, Any] = template["spec"]
    return spec


def template_labels(obj: dict[str, Any]) -> dict[str, str]:
    template = pod_template(obj)
    assert template is not None, f"{ident(obj)} has no pod template"
    labels_: dict[str, str] = template["metadata"].get("labels", {})
    return labels_


def service_of(obj: dict[str, Any]) -> Service:
    name = labels(obj).get(NAME)
    assert name in SERVICES, f"{ident(obj)}: label {NAME}={name!r} names none of {sorted(SERVICES)}"
    return SERVICES[name]


def component(obj: dict[str, Any]) -> str:
    value = labels(obj).get(COMPONENT)
    assert value, f"{ident(obj)} has no {COMPONENT} label"
    return value


def selects(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) or a Service's plain map, applied to labels."""
    match_labels = (
        selector.get("matchLabels", {})
        if "matchLabels" in selector or "matchExpressions" in selector
        else selector
    )
    if any(pod_labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in pod_labels
        if (
            (op == "In" and pod_labels.get(key) not in values)
            or (op == "NotIn" and present and pod_labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return bool(match_labels or selector.get("matchExpressions"))


def selected_workloads(selector: dict[str, Any], objects: tuple[dict[str, Any], ...]) -> list[str]:
    return [ident(w) for w in workloads(objects) if selects(selector, template_labels(w))]


def api_deployment(objects: tuple[dict[str, Any], ...], service: Service) -> dict[str, Any]:
    found = [
        d
        for d in of_kind(objects, "Deployment")
        if labels(d).get(NAME) == service.name and labels(d).get(COMPONENT) == "api"
    ]
    assert len(found) == 1, f"{service.name}: expected one API Deployment, found {[ident(d) for d in found]}"
    return found[0]


QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?")
UNITS = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30}


def quantity(value: str | int | float) -> float:
    match = QUANTITY.fullmatch(str(value))
    assert match, f"cannot read the resource quantity {value!r}"
    return float(match[1]) * UNITS[match[2]]


# --- the environment a container sees ---------------------------------------------------------------


@dataclass(frozen=True)
class EnvSource:
    kind: str  # "configmap", "secret", "literal" or "other" (fieldRef…)
    name: str | None = None  # the ConfigMap or Secret
    key: str | None = None
    value: str | None = None  # what a ConfigMap or a literal gives
    optional: bool = False


@dataclass(frozen=True)
class Container:
    target: str
    workload: dict[str, Any]
    spec: dict[str, Any]
    service: Service
    env: dict[str, EnvSource]

    @property
    def where(self) -> str:
        return f"{self.target}: {ident(self.workload)} container {self.spec['name']}"


def container_env(
    where: str, container: dict[str, Any], objects: tuple[dict[str, Any], ...]
) -> dict[str, EnvSource]:
    configmaps = {cm["metadata"]["name"]: cm.get("data", {}) for cm in of_kind(objects, "ConfigMap")}
    env: dict[str, EnvSource] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" not in source:
            pytest.fail(
                f"{where}: envFrom {source} — reference a Secret's keys one by one (secretKeyRef), "
                "so the manifests say which keys each Secret must hold"
            )
        name = source["configMapRef"]["name"]
        assert name in configmaps, f"{where}: envFrom names ConfigMap {name}, which the render does not hold"
        for key, value in configmaps[name].items():
            env[prefix + key] = EnvSource("configmap", name, key, value)
    for var in container.get("env", []):  # env wins over envFrom, as in Kubernetes
        value_from = var.get("valueFrom")
        if value_from is None:
            env[var["name"]] = EnvSource("literal", value=var.get("value", ""))
        elif "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            env[var["name"]] = EnvSource(
                "secret", ref["name"], ref["key"], optional=ref.get("optional", False)
            )
        elif "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            assert ref["name"] in configmaps, (
                f"{where}: {var['name']} names a missing ConfigMap {ref['name']}"
            )
            value = configmaps[ref["name"]].get(ref["key"])
            assert value is not None or ref.get("optional"), f"{where}: {var['name']}: no key {ref['key']}"
            env[var["name"]] = EnvSource("configmap", ref["name"], ref["key"], value)
        else:
            env[var["name"]] = EnvSource("other")
    return env


@functools.cache
def service_containers(target: str) -> tuple[Container, ...]:
    objects = render(target)
    found = []
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{target}: {ident(workload)} container {container['name']}"
            env = container_env(where, container, objects)
            found.append(Container(target, workload, container, service_of(workload), env))
    return tuple(found)


def containers_of(target: str, service: Service) -> list[Container]:
    return [c for c in service_containers(target) if c.service is service]


def is_secretish(service: Service, name: str) -> bool:
    return is_secret(service, name) or bool(SECRET_LOOKING.search(name.removeprefix(service.prefix)))


def placeholder(service: Service, name: str) -> str:
    """A well-formed value for a Secret's key, as an operator would give it."""
    setting = name.removeprefix(service.prefix)
    if setting == "DATABASE_URL":
        return f"postgresql+asyncpg://svc:placeholder@postgres.example.internal:5432/{service.database}"
    if setting in ("AMQP_URL", "CELERY_BROKER_URL"):
        return "amqp://svc:placeholder@rabbitmq.example.internal:5672/gatehouse"
    if setting == "REDIS_URL":
        return "redis://:placeholder@redis.example.internal:6379/0"
    if setting == "KEY_ENCRYPTION_KEY":
        return Fernet.generate_key().decode()
    if setting == "STRIPE_API_KEY":
        return "sk_live_placeholder"
    if setting.startswith("STRIPE_WEBHOOK_SECRET"):
        return "whsec_placeholder"
    return secrets.token_urlsafe(32)


def load_settings(target: str, service: Service) -> Any:
    """The service's settings as its API container would load them from the rendered config, with the
    Secret's required keys given placeholders and its optional ones left out."""
    api = [c for c in containers_of(target, service) if component(c.workload) == "api"]
    assert len(api) == 1, f"{target}: {service.name} should have one API container, has {len(api)}"
    env = api[0].env
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(service.prefix):
                mp.delenv(name)
        for name, source in env.items():
            if source.kind in ("configmap", "literal") and source.value is not None:
                mp.setenv(name, source.value)
            elif source.kind == "secret" and not source.optional:
                mp.setenv(name, placeholder(service, name))
        return service.settings_class()()


@functools.cache
def service_cli(service: Service) -> Any:
    """The service's console script as a click group (typer builds one)."""
    package = service.settings.partition(":")[0].rsplit(".", 1)[0]
    return typer.main.get_command(importlib.import_module(f"{package}.cli").app)


def mounted_emptydirs(spec: dict[str, Any], container: dict[str, Any]) -> set[str]:
    empty = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    return {m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty}


# --- schema ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads its schema files (1.4 MB of definitions) on every call; they do not
    change, so read each once while this module runs (a tenth of the time, same answers)."""
    utils = kubernetes_validate.utils
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(utils, "schema_contents", functools.cache(utils.schema_contents))
        yield


def schema_errors(obj: dict[str, Any], version: str) -> list[str]:
    try:
        validated = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{ident(obj)}: {'.'.join(map(str, exc.path)) or '(top)'}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{ident(obj)}: {exc.message}"]
    if validated != version:
        return [f"{ident(obj)} was validated against {validated}, not {version}"]
    return []


def test_the_schema_versions_are_shipped_by_kubernetes_validate() -> None:
    shipped = {v.rsplit(".", 1)[0] for v in kubernetes_validate.utils.all_versions()}
    missing = set(KUBERNETES_VERSIONS) - shipped
    assert not missing, f"kubernetes-validate {kubernetes_validate.__version__} ships no schema for {missing}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_file_validates_against_the_kubernetes_schema(version: str) -> None:
    files = manifest_files()
    assert files, f"no manifests under {K8S}"
    errors = []
    for path in files:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert docs, f"{path.relative_to(ROOT)} holds no object"
        errors += [f"{path.relative_to(ROOT)}: {e}" for doc in docs for e in schema_errors(doc, version)]
    assert not errors, f"not valid Kubernetes {version}:\n" + "\n".join(errors)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_validates_against_the_kubernetes_schema(target: str, version: str) -> None:
    errors = [e for obj in render(target) for e in schema_errors(obj, version)]
    assert not errors, f"{target} is not valid Kubernetes {version}:\n" + "\n".join(errors)


@pytest.mark.parametrize("target", TARGETS)
def test_everything_lives_in_the_gatehouse_namespace_under_the_restricted_pod_standard(target: str) -> None:
    objects = render(target)
    namespaces = of_kind(objects, "Namespace")
    assert [ns["metadata"]["name"] for ns in namespaces] == [NAMESPACE], (
        f"{target}: one Namespace {NAMESPACE}"
    )
    assert labels(namespaces[0]).get("pod-security.kubernetes.io/enforce") == "restricted", (
        f"{target}: the namespace should enforce the restricted Pod Security Standard (every pod meets it)"
    )
    stray = [
        ident(o) for o in objects if o["kind"] != "Namespace" and o["metadata"].get("namespace") != NAMESPACE
    ]
    assert not stray, f"{target}: objects outside namespace {NAMESPACE}: {stray}"
    unlabelled = [ident(o) for o in objects if labels(o).get("app.kubernetes.io/part-of") != "gatehouse"]
    assert not unlabelled, f"{target}: objects without app.kubernetes.io/part-of=gatehouse: {unlabelled}"


# --- workloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_runs_exactly_its_workloads(target: str) -> None:
    objects = render(target)
    for service in SERVICES.values():
        have = sorted(
            (w["kind"], component(w)) for w in workloads(objects) if labels(w).get(NAME) == service.name
        )
        want = sorted(
            [("Deployment", "api")]
            + ([("Deployment", "worker"), ("Deployment", "beat")] if service.celery else [])
            + ([("Job", "migration")] if service.database else [])
        )
        assert have == want, f"{target}: {service.name} runs {have}, expected {want}"
    for workload in workloads(objects):
        service_of(workload)  # every workload belongs to a service
        selector = workload["spec"].get("selector")
        if workload["kind"] == "Deployment":
            assert selects(selector, template_labels(workload)), (
                f"{target}: {ident(workload)}'s selector does not match its own pods"
            )


@pytest.mark.parametrize("target", TARGETS)
def test_ports_agree_with_design_md_and_the_service_cli(target: str) -> None:
    objects = render(target)
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    for service in SERVICES.values():
        serve = service_cli(service).commands["serve"]
        cli_port = next(p.default for p in serve.params if p.name == "port")
        assert cli_port == service.port, (
            f"{service.entrypoint} serve defaults to {cli_port}, docs/architecture.md says {service.port}"
        )

        deployment = api_deployment(objects, service)
        container = pod_spec(deployment)["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert ports == {"http": service.port}, (
            f"{target}: {ident(deployment)} ports {ports}, want http={service.port}"
        )
        args = ["serve", "--host", "0.0.0.0", "--port", str(service.port)]
        assert container["args"] == args, (
            f"{target}: {ident(deployment)} runs {container['args']}, want {args}"
        )
        annotations = (pod_template(deployment) or {})["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", (
            f"{target}: {ident(deployment)} is not scraped"
        )
        assert annotations.get("prometheus.io/port") == str(service.port), (
            f"{target}: {ident(deployment)} scrape port"
        )
        assert annotations.get("prometheus.io/path") == "/metrics", (
            f"{target}: {ident(deployment)} scrape path"
        )

        assert service.name in services, f"{target}: no Service {service.name} (its in-cluster address)"
        svc_ports = services[service.name]["spec"]["ports"]
        assert [(p["port"], p["targetPort"]) for p in svc_ports] == [(service.port, "http")], (
            f"{target}: Service {service.name} should map {service.port} to the pods' http port: {svc_ports}"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_selects_only_its_api_pods(target: str) -> None:
    objects = render(target)
    for svc in of_kind(objects, "Service"):
        name = svc["metadata"]["name"]
        chosen = selected_workloads(svc["spec"]["selector"], objects)
        assert name in SERVICES, f"{target}: Service {name} belongs to no Gatehouse service"
        want = [ident(api_deployment(objects, SERVICES[name]))]
        assert chosen == want, (
            f"{target}: Service {name} selects {chosen}, want only {want} (never workers or jobs)"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_container_args_are_commands_of_the_service_cli(target: str) -> None:
    for c in service_containers(target):
        args = c.spec.get("args")
        assert not c.spec.get("command"), (
            f"{c.where}: the image's entrypoint is the console script; give args"
        )
        expected = COMMANDS[component(c.workload)]
        assert args and args[0] == expected, f"{c.where}: runs {args}, expected `{expected} …`"
        group = service_cli(c.service)
        assert args[0] in group.commands, f"{c.where}: {c.service.entrypoint} has no command {args[0]}"
        try:
            params = group.commands[args[0]].make_context(args[0], list(args[1:])).params
        except Exception as exc:  # the CLI's own usage error
            pytest.fail(f"{c.where}: `{c.service.entrypoint} {' '.join(args)}` does not parse: {exc}")
        if args[0] == "beat":
            directory = str(Path(params["schedule"]).parent)
            assert directory in mounted_emptydirs(pod_spec(c.workload), c.spec), (
                f"{c.where}: beat keeps its schedule in {directory}, which must be a mounted emptyDir "
                "(the root filesystem is read-only and beat does not create directories)"
            )


@pytest.mark.parametrize("target", TARGETS)
def test_api_deployments_have_probes_and_a_prestop_pause(target: str) -> None:
    objects = render(target)
    for service in SERVICES.values():
        deployment = api_deployment(objects, service)
        container = pod_spec(deployment)["containers"][0]
        where = f"{target}: {ident(deployment)}"
        for probe, path in (
            ("readinessProbe", "/readyz"),
            ("livenessProbe", "/healthz"),
            ("startupProbe", "/healthz"),
        ):
            get = container.get(probe, {}).get("httpGet")
            assert get, f"{where}: no HTTP {probe}"
            assert get["path"].partition("?")[0] == path, f"{where}: {probe} on {get['path']}, want {path}"
            assert get["port"] in ("http", service.port), f"{where}: {probe} on port {get['port']}"
            timeout = container[probe].get("timeoutSeconds", 1)
            assert timeout >= 2, f"{where}: {probe} timeout {timeout}s; /readyz checks take up to 2 s"
        if service.name == "gateway":  # its own readiness: not every upstream's too
            query = parse_qs(container["readinessProbe"]["httpGet"]["path"].partition("?")[2])
            upstreams = getattr(service.settings_class()(), "upstreams")  # noqa: B009 - not on the base type
            assert sorted(query.get("exclude", [])) == sorted(upstreams), f"{where}: exclude every upstream"
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert sleep >= 5, f"{where}: a preStop sleep (≥ 5 s) lets endpoints drop the pod before SIGTERM"
    for c in service_containers(target):
        if component(c.workload) != "api":
            assert "ports" not in c.spec, f"{c.where}: only the API listens"


def test_the_consumers_grace_fits_in_the_lifespans_stop_deadline() -> None:
    assert CONSUMER_STOP_GRACE <= LIFESPAN_STOP_SECONDS


@pytest.mark.parametrize("target", TARGETS)
def test_termination_grace_outlasts_the_prestop_pause_and_the_drain(target: str) -> None:
    objects = render(target)
    for service in SERVICES.values():
        deployment = api_deployment(objects, service)
        spec = pod_spec(deployment)
        sleep = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        if service.name == "gateway":
            value = load_settings(target, service).shutdown_grace_seconds
            drain = int(value)
        else:
            drain = GRACEFUL_SHUTDOWN_SECONDS
        need = sleep + drain + LIFESPAN_STOP_SECONDS
        grace = spec.get("terminationGracePeriodSeconds", 30)
        assert grace > need, (
            f"{target}: {ident(deployment)} is killed after {grace}s; preStop {sleep}s + uvicorn's drain "
            f"{drain}s + the lifespan's stop {LIFESPAN_STOP_SECONDS}s need more than {need}s"
        )
    for worker in (w for w in workloads(objects) if labels(w).get(COMPONENT) == "worker"):
        grace = pod_spec(worker).get("terminationGracePeriodSeconds", 30)
        assert grace >= 60, (
            f"{target}: {ident(worker)}: Celery's warm shutdown finishes the task in hand; give ≥ 60 s"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_runs_non_root_read_only_with_resources_and_a_writable_tmp(target: str) -> None:
    for workload in workloads(render(target)):
        spec = pod_spec(workload)
        where = f"{target}: {ident(workload)}"
        assert spec.get("automountServiceAccountToken") is False, (
            f"{where}: no service account token is needed"
        )
        assert spec.get("enableServiceLinks") is False, (
            f"{where}: service links would inject GATEWAY_PORT, AUTH_SERVICE_PORT… (settings' prefixes)"
        )
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), (
            f"{where}: host namespaces"
        )
        pod_sc = spec.get("securityContext", {})
        want_pod = {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID}
        assert {k: pod_sc.get(k) for k in want_pod} == want_pod, f"{where}: pod securityContext {pod_sc}"
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", (
            f"{where}: seccomp RuntimeDefault"
        )
    for c in service_containers(target):
        sc = c.spec.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, (
            f"{c.where}: allowPrivilegeEscalation must be false"
        )
        assert sc.get("readOnlyRootFilesystem") is True, f"{c.where}: the root filesystem must be read-only"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{c.where}: drop ALL capabilities"
        assert not sc.get("privileged"), f"{c.where}: privileged"
        assert "/tmp" in mounted_emptydirs(pod_spec(c.workload), c.spec), (
            f"{c.where}: mount an emptyDir at /tmp"
        )

        resources = c.spec.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for kind in ("cpu", "memory"):
            assert kind in requests and kind in limits, (
                f"{c.where}: set {kind} requests and limits ({resources})"
            )
            assert quantity(requests[kind]) <= quantity(limits[kind]), (
                f"{c.where}: {kind} request above its limit"
            )

        image = c.spec["image"]
        repository = IMAGE_REPOSITORY.format(service=c.service.name)
        if target == "base":
            assert image == repository, f"{c.where}: image {image}; the overlays set the tag (images:)"
        else:
            tag = image.removeprefix(repository + ":")
            assert image.startswith(repository + ":") and tag not in ("", "latest"), (
                f"{c.where}: image {image} should be {repository}:<tag>, pinned by the overlay"
            )


# --- configuration and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize("target", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_every_required_setting_is_set_in_every_container(target: str, service: Service) -> None:
    containers = containers_of(target, service)
    assert containers, f"{target}: no container runs {service.name}"
    for c in containers:
        missing = service.must_set() - c.env.keys()
        assert not missing, f"{c.where}: {sorted(missing)} must be set (ConfigMap or Secret reference)"


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_of_a_service_sees_the_same_settings(target: str) -> None:
    for service in SERVICES.values():
        containers = containers_of(target, service)
        api = containers[0]
        for other in containers[1:]:
            assert other.env == api.env, (
                f"{other.where} is configured unlike {api.where} (worker, beat and migration read the same "
                f"settings): differs in {sorted(set(other.env.items()) ^ set(api.env.items()))}"
            )


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_come_only_from_secret_references(target: str) -> None:
    for c in service_containers(target):
        for name, source in c.env.items():
            if not is_secretish(c.service, name):
                continue
            assert source.kind == "secret", (
                f"{c.where}: {name} is a secret; take it from a Secret, not a {source.kind}"
            )
            assert (source.name, source.key) == (f"{c.service.name}-secrets", name), (
                f"{c.where}: {name} should be key {name} of Secret {c.service.name}-secrets "
                f"(README.md's commands create that), not {source.key} of {source.name}"
            )
        for name, source in c.env.items():
            if source.kind == "secret" and source.optional:
                assert name in OPTIONAL_SECRETS, (
                    f"{c.where}: {name} is required; its Secret key must not be optional"
                )


@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_set_is_a_real_setting(target: str) -> None:
    for c in service_containers(target):
        wrong = sorted(c.service.unknown(c.env))
        assert not wrong, (
            f"{c.where}: {wrong} are not settings {c.service.name} reads (typo, or another prefix?)"
        )
    for cm in of_kind(render(target), "ConfigMap"):
        service = service_of(cm)
        wrong = sorted(service.unknown(cm.get("data", {})))
        assert not wrong, (
            f"{target}: ConfigMap {cm['metadata']['name']}: {wrong} are not {service.name} settings"
        )
        for key, value in cm.get("data", {}).items():
            assert not is_secretish(service, key), f"{target}: {key} is a secret; it belongs in a Secret"
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{target}: {key} carries a password"


def test_no_secret_values_are_committed() -> None:
    for path in sorted(K8S.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text()
        assert "PRIVATE KEY" not in text, f"{path.relative_to(ROOT)} holds a private key"
        if path.suffix == ".yaml":
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                assert doc.get("kind") != "Secret", (
                    f"{path.relative_to(ROOT)}: Secrets are created in the cluster"
                )
                assert "secretGenerator" not in doc, (
                    f"{path.relative_to(ROOT)}: no secretGenerator (secret values)"
                )
    for target in TARGETS:
        assert not of_kind(render(target), "Secret"), f"{target} renders a Secret"


def test_the_readme_says_which_secret_keys_to_create() -> None:
    readme = (K8S / "README.md").read_text()
    for target in TARGETS:
        for c in service_containers(target):
            for source in c.env.values():
                if source.kind != "secret":
                    continue
                assert f"create secret generic {source.name} " in readme, (
                    f"deploy/k8s/README.md should say how to create Secret {source.name}"
                )
                key = str(source.key) if source.optional else f"--from-literal={source.key}="
                assert key in readme, f"deploy/k8s/README.md should name {key} of Secret {source.name}"


@pytest.mark.parametrize("target", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES.values(), ids=list(SERVICES))
def test_settings_load_from_the_rendered_config(target: str, service: Service) -> None:
    settings = load_settings(target, service)  # raises when a value does not parse or is refused
    expected = "production" if target == "prod" else "development"
    assert settings.environment == expected, f"{target}: {service.name} runs as {settings.environment}"
    if target == "prod":
        values = {
            n: s.value for n, s in containers_of(target, service)[0].env.items() if s.kind == "configmap"
        }
        local = {n: v for n, v in values.items() if any(m in str(v) for m in LOCAL_MARKERS)}
        assert not local, f"prod: {service.name} points at this machine: {local}"


@pytest.mark.parametrize("target", OVERLAYS)
def test_services_agree_on_the_issuer_and_on_each_others_addresses(target: str) -> None:
    s = {name: load_settings(target, service) for name, service in SERVICES.items()}
    auth: Any = s["auth-service"]
    gateway: Any = s["gateway"]
    verifiers = {name: settings for name, settings in s.items() if name != "web"}  # web verifies no token
    issuers = {name: settings.issuer for name, settings in verifiers.items()}
    assert len(set(issuers.values())) == 1, f"{target}: every service must accept auth's issuer: {issuers}"
    audiences = {name: settings.audience for name, settings in verifiers.items()}
    assert len(set(audiences.values())) == 1, f"{target}: one audience: {audiences}"
    assert auth.issuer == auth.public_url.rstrip("/") + "/auth", (
        f"{target}: the issuer is the public (gateway) URL + /auth: {auth.issuer} vs {auth.public_url}"
    )
    assert s["notification-service"].public_url == auth.public_url, f"{target}: one public URL"
    assert s["web"].public_url == auth.public_url, f"{target}: the pages are reached at the public URL"

    def address(name: str) -> str:
        return f"http://{name}:{SERVICES[name].port}"

    jwks = f"{address('auth-service')}/auth/.well-known/jwks.json"
    assert s["web"].api_url == address("gateway"), f"{target}: the web's API is the gateway's Service"
    for name in ("gateway", "billing-service", "notification-service"):
        url = gateway.jwks if name == "gateway" else s[name].jwks_url
        assert url == jwks, f"{target}: {name} fetches keys from {url}, want auth-service's Service {jwks}"
    upstreams = {name: upstream.url for name, upstream in gateway.upstreams.items()}
    want = {name: address(service) for name, service in GATEWAY_UPSTREAMS.items()}
    assert upstreams == want, f"{target}: the gateway's upstreams {upstreams}, want the Services {want}"
    services = {svc["metadata"]["name"] for svc in of_kind(render(target), "Service")}
    for url in [*upstreams.values(), jwks]:
        assert urlsplit(url).hostname in services, f"{target}: {url} names no Service of the render"


# --- scaling, disruption, one-offs -----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_hpa_and_pdb_cover_exactly_the_stateless_apis(target: str) -> None:
    objects = render(target)
    apis = {service.name: api_deployment(objects, service) for service in SERVICES.values()}
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    targets = sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas)
    assert targets == sorted(apis), f"{target}: HPAs scale {targets}, want the APIs {sorted(apis)}"
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        deployment = apis[ref["name"]]
        assert (ref["kind"], ref["apiVersion"]) == ("Deployment", "apps/v1"), (
            f"{target}: {ident(hpa)} target {ref}"
        )
        assert "replicas" not in deployment["spec"], (
            f"{target}: {ident(deployment)} sets replicas, which every apply would reset under its HPA"
        )
        low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        assert 1 <= low <= high, f"{target}: {ident(hpa)} bounds {low}..{high}"
        if target == "prod":
            assert low >= 2, (
                f"prod: {ident(hpa)} keeps {low} replica(s); a drain or a crash would be an outage"
            )
        resources = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        assert "cpu" in resources, f"{target}: {ident(hpa)} should scale on CPU"
        assert "cpu" in pod_spec(deployment)["containers"][0]["resources"]["requests"], (
            "CPU utilization needs a request"
        )

    pdbs = of_kind(objects, "PodDisruptionBudget")
    covered: dict[str, list[str]] = {}
    for pdb in pdbs:
        assert "maxUnavailable" in pdb["spec"], (
            f"{target}: {ident(pdb)}: maxUnavailable works at any replica count"
        )
        for name in selected_workloads(pdb["spec"]["selector"], objects):
            covered.setdefault(name, []).append(ident(pdb))
    for deployment in apis.values():
        assert len(covered.get(ident(deployment), [])) == 1, (
            f"{target}: {ident(deployment)} needs one PodDisruptionBudget: {covered.get(ident(deployment))}"
        )
    for workload in workloads(objects):
        if component(workload) in ("beat", "migration"):
            assert ident(workload) not in covered, (
                f"{target}: {ident(workload)} must have no PodDisruptionBudget"
            )


@pytest.mark.parametrize("target", TARGETS)
def test_beat_runs_exactly_one_replica(target: str) -> None:
    objects = render(target)
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    beats = [w for w in workloads(objects) if labels(w).get(COMPONENT) == "beat"]
    assert len(beats) == sum(s.celery for s in SERVICES.values()), f"{target}: one beat per Celery service"
    for beat in beats:
        spec = beat["spec"]
        assert spec.get("replicas") == 1, (
            f"{target}: {ident(beat)} runs {spec.get('replicas')} replicas, want 1"
        )
        assert spec.get("strategy", {}).get("type") == "Recreate", (
            f"{target}: {ident(beat)}: a rolling update would run two beats (every task sent twice)"
        )
        assert beat["metadata"]["name"] not in scaled, f"{target}: {ident(beat)} must not autoscale"
        container = pod_spec(beat)["containers"][0]
        schedule = container["args"][container["args"].index("--schedule") + 1]
        probe = " ".join(container.get("livenessProbe", {}).get("exec", {}).get("command", []))
        assert f"'{schedule}*'" in probe, (
            f"{target}: {ident(beat)}: its liveness probe should watch the schedule file {schedule} "
            f"(beat rewrites it every few minutes while its loop runs), not: {probe!r}"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_migration_jobs_run_migrate_once_and_can_be_applied_first(target: str) -> None:
    objects = render(target)
    configmaps = {cm["metadata"]["name"]: cm for cm in of_kind(objects, "ConfigMap")}
    for job in of_kind(objects, "Job"):
        where = f"{target}: {ident(job)}"
        service = service_of(job)
        assert service.database, f"{where}: {service.name} has no database to migrate"
        assert component(job) == "migration" == template_labels(job).get(COMPONENT), (
            f"{where}: label the Job and its pods {COMPONENT}=migration (README's rollout selects on it)"
        )
        spec = job["spec"]
        assert pod_spec(job)["restartPolicy"] == "Never", (
            f"{where}: a failed migration is a new pod, not a restart"
        )
        assert 1 <= spec.get("backoffLimit", 6) <= 6 and "backoffLimit" in spec, (
            f"{where}: set a small backoffLimit"
        )
        assert spec.get("ttlSecondsAfterFinished"), f"{where}: set ttlSecondsAfterFinished"
        assert spec.get("activeDeadlineSeconds"), (
            f"{where}: set activeDeadlineSeconds (a stuck lock must end)"
        )
        for source in pod_spec(job)["containers"][0].get("envFrom", []):
            cm = configmaps[source["configMapRef"]["name"]]
            assert labels(cm).get(COMPONENT) == "config", (
                f"{where}: ConfigMap {cm['metadata']['name']} must be labelled {COMPONENT}=config: README's "
                "first apply selects config and migration, so the Job finds its ConfigMap"
            )


def test_prod_ingress_sends_the_stripe_webhook_to_billing_and_the_rest_to_the_gateway() -> None:
    objects = render("prod")
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    routes: dict[tuple[str, str], tuple[str, str, int]] = {}
    tls_hosts: set[str] = set()
    for ingress in of_kind(objects, "Ingress"):
        for tls in ingress["spec"].get("tls", []):
            tls_hosts.update(tls["hosts"])
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                port = backend["port"]["number"]
                assert backend["name"] in services, f"prod: {ident(ingress)} routes to a missing Service"
                assert port in [p["port"] for p in services[backend["name"]]["spec"]["ports"]], (
                    f"prod: {ident(ingress)} routes to port {port}, which Service {backend['name']} lacks"
                )
                routes[(rule["host"], path["path"])] = (path["pathType"], backend["name"], port)
    auth: Any = load_settings("prod", SERVICES["auth-service"])
    host = urlsplit(auth.public_url).hostname
    assert host and (host, "/") in routes, f"prod: no Ingress serves the public URL {auth.public_url}"
    assert routes[(host, "/")] == ("Prefix", "gateway", SERVICES["gateway"].port), (
        "prod: / goes to the gateway"
    )
    webhook = routes.get((host, "/billing/stripe/webhook"))
    assert webhook == ("Exact", "billing-service", SERVICES["billing-service"].port), (
        f"prod: Stripe posts to billing-service directly at /billing/stripe/webhook; the route is {webhook}"
    )
    gateway: Any = load_settings("prod", SERVICES["gateway"])
    assert "/billing/stripe/webhook/**" in gateway.blocked_paths, "the gateway must keep refusing the webhook"
    assert {h for h, _ in routes} <= tls_hosts, f"prod: every host needs TLS; TLS covers {tls_hosts}"
    assert gateway.trusted_proxies, (
        "prod: behind the Ingress, GATEWAY_TRUSTED_PROXIES must name the controller's network, or every "
        "client shares one rate-limit counter"
    )
