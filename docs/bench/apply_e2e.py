#!/usr/bin/env python3
"""End-to-end server-side apply throughput against a running `skiff server`.

Usage: apply_e2e.py <data-dir> <port> [n]

Applies the ~50-field Deployment of crates/api/benches/apply.rs (as JSON, with
`application/apply-patch+yaml`) over HTTPS keep-alive connections with the admin client
certificate: n sequential applies alternating two images (each a real change and write), then
the same from 8 threads on 8 Deployments. Prints applies/s.
"""
import json
import sys
import threading
import time

import requests
import urllib3

urllib3.disable_warnings()

data_dir, port = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
base = f"https://127.0.0.1:{port}/apis/apps/v1/namespaces/default/deployments"


def deployment(name, image):
    containers = [{
        "name": f"c{i}", "image": f"{image}:{i}", "args": ["--a", "--b"],
        "ports": [{"containerPort": 8000 + i, "name": f"p{i}"}],
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                      "requests": {"cpu": "100m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 8000 + i}, "periodSeconds": 5},
    } for i in range(3)]
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "front"},
                     "annotations": {"owner": "team"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app": name, "tier": "front"}},
                              "spec": {"containers": containers, "serviceAccountName": "web",
                                       "terminationGracePeriodSeconds": 10}}}})


def session():
    s = requests.Session()
    s.cert = (f"{data_dir}/pki/admin.crt", f"{data_dir}/pki/admin.key")
    # Loopback measurement; Python's verifier rejects the cluster CA's chain (curl and
    # kubectl accept it), so the server certificate is not checked here.
    s.verify = False
    s.headers["Content-Type"] = "application/apply-patch+yaml"
    return s


def run(s, name, count):
    bodies = [deployment(name, "nginx"), deployment(name, "httpd")]
    for i in range(count):
        r = s.patch(f"{base}/{name}?fieldManager=bench", data=bodies[i % 2], verify=False)
        assert r.status_code in (200, 201), r.text


s = session()
run(s, "seq", 10)
t = time.perf_counter()
run(s, "seq", n)
seq = n / (time.perf_counter() - t)
threads = [threading.Thread(target=run, args=(session(), f"par{k}", n // 8)) for k in range(8)]
t = time.perf_counter()
for th in threads:
    th.start()
for th in threads:
    th.join()
par = (n // 8) * 8 / (time.perf_counter() - t)
print(f"sequential applies: {seq:.0f}/s; 8 threads: {par:.0f}/s")
