#!/usr/bin/env python3
"""A Kubernetes API stand-in for bench/volunteer: serves N real-sized Nodes
(~11 KB each: 40 images, conditions, labels, annotations, addresses) in pages
that honour limit and continue, plus /version and the kube-system namespace.
Plain HTTP, like kubectl proxy. Usage: kubeapi.py NODES PORTFILE"""
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

NODES = int(sys.argv[1])


def node(i):
    name = f"ip-10-{i // 65536 % 256}-{i // 256 % 256}-{i % 256}.eu-west-1.compute.internal"
    zone = "eu-west-1" + "abc"[i % 3]
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": str(uuid.UUID(int=i + 1)),
            "resourceVersion": str(1000000 + i),
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": "m5.2xlarge",
                "beta.kubernetes.io/os": "linux",
                "failure-domain.beta.kubernetes.io/region": "eu-west-1",
                "failure-domain.beta.kubernetes.io/zone": zone,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.2xlarge",
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/nodegroup": f"workers-{i % 7}",
                "team": f"team-{i % 13}",
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": f"10.0.{i // 256 % 256}.{i % 256}",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "csi.volume.kubernetes.io/nodeid": json.dumps({"ebs.csi.aws.com": f"i-{i:017x}"}),
            },
        },
        "spec": {
            "providerID": f"aws:///{zone}/i-{i:017x}",
            "podCIDR": f"10.{100 + i // 65536}.{i // 256 % 256}.0/24",
            "podCIDRs": [f"10.{100 + i // 65536}.{i // 256 % 256}.0/24"],
            "taints": [{"key": "dedicated", "value": f"team-{i % 13}", "effect": "NoSchedule"}] if i % 5 == 0 else [],
        },
        "status": {
            "capacity": {"cpu": "8", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0",
                         "hugepages-2Mi": "0", "memory": "32386544Ki", "pods": "58"},
            "allocatable": {"cpu": "7910m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0",
                            "hugepages-2Mi": "0", "memory": "31369712Ki", "pods": "58"},
            "conditions": [
                {"type": t, "status": s, "lastHeartbeatTime": "2024-06-01T12:00:00Z",
                 "lastTransitionTime": "2024-05-01T10:00:30Z", "reason": r, "message": m}
                for t, s, r, m in [
                    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ]
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{i // 256 % 256}.{i % 256}"},
                {"type": "ExternalIP", "address": f"52.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}", "systemUUID": str(uuid.UUID(int=i + 7 << 64)),
                "bootID": str(uuid.UUID(int=i + 11 << 80)),
                "kernelVersion": "5.10.217-205.860.amzn2.x86_64", "osImage": "Amazon Linux 2",
                "containerRuntimeVersion": "containerd://1.7.11", "kubeletVersion": "v1.29.3-eks-ae9a62a",
                "kubeProxyVersion": "v1.29.3-eks-ae9a62a", "operatingSystem": "linux", "architecture": "amd64",
            },
            "images": [
                {"names": [f"registry.example.com/team-{k}/svc-{k}@sha256:{(i * 40 + k):064x}",
                           f"registry.example.com/team-{k}/svc-{k}:v1.{k}.{i % 100}"],
                 "sizeBytes": 100000000 + k * 1234567}
                for k in range(40)
            ],
        },
    }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/version":
            return self.answer({"major": "1", "minor": "29", "gitVersion": "v1.29.3-eks-ae9a62a"})
        if url.path == "/api/v1/namespaces/kube-system":
            return self.answer({"kind": "Namespace", "metadata": {"name": "kube-system",
                                "uid": "0e5ce4d6-51b4-4d43-9c6c-0b3d2f0f6a11"}})
        if url.path == "/api/v1/nodes":
            q = parse_qs(url.query)
            limit = int(q.get("limit", ["500"])[0])
            start = int(q.get("continue", ["0"])[0])
            end = min(NODES, start + limit)
            meta = {"resourceVersion": "2000000"}
            if end < NODES:
                meta["continue"] = str(end)
            return self.answer({"kind": "NodeList", "apiVersion": "v1", "metadata": meta,
                                "items": [node(i) for i in range(start, end)]})
        self.send_error(404)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
