"""deploy/kubernetes/ checked offline, so a typo fails here and not in a cluster:
every document against the Kubernetes schemas that kubernetes-validate ships
(strict: an unknown field is an error), and what no schema sees: the labels,
port names, namespaces and image that tie the manifests to each other and to
pyrunq."""

from __future__ import annotations

import functools
import glob
import os

import jsonpatch
import kubernetes_validate
import pytest
import yaml

import pyrunq
from pyrunq.cli.exporter import listen_address

KUBERNETES_VERSION = "1.37"  # the newest kubernetes-validate ships (1.25 to 1.37)
DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "kubernetes")
# Custom resources, unknown to the Kubernetes schemas: the cross-checks below stand in for one.
CUSTOM = {("monitoring.coreos.com/v1", "PodMonitor")}


class StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of a key given twice; kubectl rejects the manifest."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(key) for key in keys if keys.count(key) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(None, None, f"keys given twice: {twice}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


KUSTOMIZATION = "kustomization.yaml"  # kustomize's, not a Kubernetes object
MANIFESTS = sorted(p for p in glob.glob(os.path.join(DEPLOY, "*.yaml")) if not p.endswith(KUSTOMIZATION))


@functools.lru_cache(maxsize=None)
def documents(path: str) -> tuple[dict, ...]:
    # read in the tests, not at collection: a YAML error fails its tests only
    with open(path) as f:
        return tuple(doc for doc in yaml.load_all(f, Loader=StrictLoader) if doc is not None)


def all_documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def validate(doc: dict) -> str:
    """The one validation every manifest gets (and the typo tests prove fails)."""
    return kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# ---- the schemas ------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=os.path.basename)
def test_manifest_is_valid_for_kubernetes(path):
    for doc in documents(path):
        if (doc.get("apiVersion"), doc.get("kind")) not in CUSTOM:
            # that version's schemas, not an older fallback
            assert validated(doc) == KUBERNETES_VERSION


def validated(doc: dict) -> str:
    """validate(), failing in one line rather than with the whole schema."""
    try:
        return validate(doc)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(map(str, e.path)) or "top level"
        error = f"{doc['kind']} {doc['metadata'].get('name')}, {where}: {e.message}"
    pytest.fail(error, pytrace=False)  # outside except: no chained traceback


@pytest.mark.parametrize(
    "name, field, typo",
    [
        ("daemonset.yaml", "hostPID", "hostPid"),
        ("daemonset.yaml", "volumeMounts", "volumeMount"),
        ("service.yaml", "targetPort", "targetport"),
    ],
)
def test_a_typo_in_a_manifest_is_rejected(name, field, typo):
    with open(os.path.join(DEPLOY, name)) as f:
        text = f.read()
    assert text.count(f"{field}:") == 1  # or the typo would not be made
    docs = yaml.load_all(text.replace(f"{field}:", f"{typo}:"), Loader=StrictLoader)
    with pytest.raises(kubernetes_validate.ValidationError, match=f"'{typo}' was unexpected"):
        for doc in docs:
            validate(doc)


def test_a_key_given_twice_is_rejected():
    with pytest.raises(yaml.constructor.ConstructorError, match="hostPID"):
        yaml.load("hostPID: true\nhostPID: false\n", Loader=StrictLoader)


# ---- between the manifests --------------------------------------------------


def one(kind: str) -> dict:
    found = [doc for doc in all_documents() if doc.get("kind") == kind]
    assert len(found) == 1, f"{len(found)} {kind} documents in {DEPLOY}"
    return found[0]


def pod_template() -> dict:
    return one("DaemonSet")["spec"]["template"]


def container() -> dict:
    (exporter,) = pod_template()["spec"]["containers"]
    return exporter


def selects(match_labels: dict, labels: dict) -> bool:
    # an empty selector would select every pod of the namespace
    return bool(match_labels) and match_labels.items() <= labels.items()


def selects_pods(selector: dict) -> bool:
    assert set(selector) == {"matchLabels"}, "matchExpressions: extend selects() first"
    return selects(selector["matchLabels"], pod_template()["metadata"]["labels"])


def test_daemonset_selects_its_own_pods():
    assert selects_pods(one("DaemonSet")["spec"]["selector"])


def test_service_targets_the_exporter_port():
    spec = one("Service")["spec"]
    assert selects(spec["selector"], pod_template()["metadata"]["labels"])
    ports = container()["ports"]
    for port in spec["ports"]:
        key = "name" if isinstance(port["targetPort"], str) else "containerPort"
        assert port["targetPort"] in [p[key] for p in ports]


def test_podmonitor_scrapes_the_exporter_port():
    monitor = one("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert "namespaceSelector" not in monitor["spec"]  # so it watches its own namespace
    assert selects_pods(monitor["spec"]["selector"])
    annotations = pod_template()["metadata"]["annotations"]
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in [p["name"] for p in container()["ports"]]
        # the Prometheus Operator's default path, unless it names one
        assert endpoint.get("path", "/metrics") == annotations["prometheus.io/path"]


def test_all_in_the_daemonsets_namespace():
    # Services and PodMonitors only find pods of their own namespace
    namespace = one("DaemonSet")["metadata"].get("namespace")
    assert namespace
    assert {doc["metadata"].get("namespace") for doc in all_documents()} == {namespace}


def test_exporter_listens_on_the_declared_port():
    (listen,) = [arg.split("=", 1)[1] for arg in container()["args"] if arg.startswith("--listen=")]
    (port,) = [p["containerPort"] for p in container()["ports"] if p["name"] == "metrics"]
    assert listen_address(listen)[1][1] == port
    assert pod_template()["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_image_is_the_one_dev_image_builds():
    name, _, tag = container()["image"].rpartition(":")
    assert name == "localhost/pyrunq"
    assert tag == pyrunq.__version__  # a version bump must bump the manifest too


# ---- the kustomizations: the base and the TLS overlay ------------------------


def kustomization(directory: str) -> dict:
    with open(os.path.join(directory, KUSTOMIZATION)) as f:
        return yaml.load(f, Loader=StrictLoader)


def test_the_base_kustomization_holds_every_manifest():
    base = kustomization(DEPLOY)
    assert sorted(os.path.join(DEPLOY, r) for r in base["resources"]) == MANIFESTS


def tls_documents() -> list[dict]:
    """The TLS overlay as kustomize builds it: the base, its JSON patches
    (RFC 6902) applied to their targets."""
    overlay = os.path.join(os.path.dirname(DEPLOY), "kubernetes-tls")  # not below its base: kustomize refuses
    spec = kustomization(overlay)
    assert [os.path.normpath(os.path.join(overlay, r)) for r in spec["resources"]] == [DEPLOY]
    docs = [dict(doc) for doc in all_documents()]
    for patch in spec["patches"]:
        with open(os.path.join(overlay, patch["path"])) as f:
            ops = jsonpatch.JsonPatch(yaml.load(f, Loader=StrictLoader))
        target = patch["target"]
        hits = [
            i
            for i, d in enumerate(docs)
            if (d["kind"], d["metadata"]["name"]) == (target["kind"], target["name"])
        ]
        assert len(hits) == 1, target
        docs[hits[0]] = ops.apply(docs[hits[0]])
    return docs


def test_the_tls_overlay_is_valid_for_kubernetes():
    for doc in tls_documents():
        if (doc.get("apiVersion"), doc.get("kind")) not in CUSTOM:
            assert validated(doc) == KUBERNETES_VERSION


def test_the_tls_overlay_serves_what_it_mounts_and_scrapes_with_https():
    from pyrunq.cli import Parser, exporter

    docs = {doc["kind"]: doc for doc in tls_documents()}
    spec = docs["DaemonSet"]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    parser = Parser(prog="pyrunq exporter")
    exporter.add_arguments(parser)
    web_config = parser.parse_args(c["args"]).web_config
    (mount,) = [m for m in c["volumeMounts"] if web_config.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    files = {i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
    assert files == {os.path.basename(web_config), "tls.crt", "tls.key"}
    # nobody, the exporter once it dropped root, reads renewed files through the group
    assert volume["projected"]["defaultMode"] == 0o440 and spec["securityContext"]["fsGroup"] == 65534
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"
    (endpoint,) = docs["PodMonitor"]["spec"]["podMetricsEndpoints"]
    assert endpoint["scheme"] == "https" and set(endpoint["basicAuth"]) == {"username", "password"}


def test_probes_ask_the_health_endpoints():
    assert container()["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container()["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container()["readinessProbe"]["httpGet"]["port"] in [p["name"] for p in container()["ports"]]
