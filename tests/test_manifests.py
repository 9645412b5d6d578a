"""deploy/kubernetes/ checked offline, so a typo fails here and not in a cluster:
every document against the Kubernetes schemas that kubernetes-validate ships
(strict: an unknown field is an error), and what no schema sees: the labels,
port names, namespaces and image that tie the manifests to each other and to
pyrunq."""

from __future__ import annotations

import functools
import glob
import os

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


MANIFESTS = sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")))


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
