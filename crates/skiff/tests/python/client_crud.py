"""The official Python client against a running skiff server: CRUD, selectors, watch.

Usage: client_crud.py KUBECONFIG. Exits non-zero (with a traceback) on any failure.
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
ns = "default"

# Create, read, update (with optimistic concurrency), list with selectors, delete.
for name, tier in [("py-a", "front"), ("py-b", "back"), ("py-c", "front")]:
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={"owner": "python", "tier": tier}),
        data={"k": name},
    )
    created = v1.create_namespaced_config_map(ns, cm)
    assert created.metadata.uid, "server sets uid"
    assert created.metadata.resource_version, "server sets resourceVersion"

got = v1.read_namespaced_config_map("py-a", ns)
assert got.data == {"k": "py-a"}, got.data
got.data["k"] = "changed"
updated = v1.replace_namespaced_config_map("py-a", ns, got)
assert updated.data["k"] == "changed"
assert int(updated.metadata.resource_version) > int(got.metadata.resource_version)

# A stale update is a 409 Conflict.
got.data["k"] = "stale"
try:
    v1.replace_namespaced_config_map("py-a", ns, got)
    raise AssertionError("stale update accepted")
except ApiException as e:
    assert e.status == 409, e.status

front = v1.list_namespaced_config_map(ns, label_selector="owner=python,tier=front")
assert sorted(i.metadata.name for i in front.items) == ["py-a", "py-c"], front.items
notfront = v1.list_namespaced_config_map(ns, label_selector="owner=python,tier!=front")
assert [i.metadata.name for i in notfront.items] == ["py-b"]
byname = v1.list_namespaced_config_map(ns, field_selector="metadata.name=py-b")
assert [i.metadata.name for i in byname.items] == ["py-b"]

patched = v1.patch_namespaced_config_map("py-b", ns, {"metadata": {"labels": {"tier": "front"}}})
assert patched.metadata.labels["tier"] == "front"

# Typed apps/v1 object.
dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py-web"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "py-web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "py-web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
        ),
    ),
)
apps.create_namespaced_deployment(ns, dep)
assert apps.read_namespaced_deployment("py-web", ns).spec.replicas == 1

# Not found is a 404 with a Status body.
try:
    v1.read_namespaced_config_map("nope", ns)
    raise AssertionError("missing object returned")
except ApiException as e:
    assert e.status == 404, e.status
    assert '"reason":"NotFound"' in e.body, e.body

# Watch from the list's resourceVersion sees later changes in order.
rv = v1.list_namespaced_config_map(ns).metadata.resource_version
seen = []
done = threading.Event()

def watcher():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv,
                       label_selector="owner=python", timeout_seconds=20):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED" and ev["object"].metadata.name == "py-c":
            w.stop()
    done.set()

t = threading.Thread(target=watcher)
t.start()
import time
time.sleep(0.5)
v1.create_namespaced_config_map(ns, client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="py-d", labels={"owner": "python"})))
v1.patch_namespaced_config_map("py-d", ns, {"data": {"x": "y"}})
v1.delete_namespaced_config_map("py-c", ns)
assert done.wait(25), "watch did not finish"
assert seen == [("ADDED", "py-d"), ("MODIFIED", "py-d"), ("DELETED", "py-c")], seen

v1.delete_namespaced_config_map("py-a", ns)
remaining = v1.list_namespaced_config_map(ns, label_selector="owner=python")
assert sorted(i.metadata.name for i in remaining.items) == ["py-b", "py-d"]
print("python client: ok")
