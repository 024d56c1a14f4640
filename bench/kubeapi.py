#!/usr/bin/env python3
"""A Kubernetes API stand-in for bench/volunteer, honest or hostile. Plain HTTP,
like kubectl proxy; /version and the kube-system namespace, and /api/v1/nodes
as MODE says:

  real     N real-sized Nodes (~11 KB each: 40 images, conditions, labels,
           annotations, addresses) in pages that honour limit and continue
  dense    N small Nodes, each at the volunteer's per-node bound: 32
           reportable capacity entries
  worst    dense, and every node has values of its own (filling most of the
           volunteer's 4 MiB pool), and the last page holds a 15 MiB field
           name, which the volunteer must buffer to skip it
  million  one page of N minimal Nodes, whatever the limit (streamed)
  string   one page of exactly 16 MiB, the volunteer's bound for one answer,
           nearly all of it one string the volunteer must look at (streamed)
  empty    endless empty pages, each with a new continue token
  repeat   real-sized Nodes, every page with the same continue token

Usage: kubeapi.py MODE N PORTFILE"""
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MODE = sys.argv[1]
NODES = int(sys.argv[2])
ANSWER_BYTES = 16 * 1024 * 1024


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
        self.stream([json.dumps(obj).encode()])

    def stream(self, parts, length=None):
        """Sends the byte strings of `parts` (a list, or a generator with its total length)."""
        if length is None:
            length = sum(len(p) for p in parts)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            for part in parts:
                self.wfile.write(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the volunteer stopped reading at one of its bounds

    def nodes(self, start, limit):
        if MODE == "empty":
            return self.answer({"kind": "NodeList", "metadata": {"continue": str(start + 1)}, "items": []})
        if MODE == "million":
            return self.stream(*million())
        if MODE == "string":
            return self.stream(*one_string())
        end = min(NODES, start + limit)
        make = {"dense": dense, "worst": worst}.get(MODE, node)
        meta = {"resourceVersion": "2000000"}
        if end < NODES:
            meta["continue"] = str(limit if MODE == "repeat" else end)
        items = [make(i) for i in range(start, end)]
        if MODE == "worst" and end == NODES:
            items[0]["metadata"]["x" * (15 << 20)] = 1
        self.answer({"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": items})

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/version":
            return self.answer({"major": "1", "minor": "29", "gitVersion": "v1.29.3-eks-ae9a62a"})
        if url.path == "/api/v1/namespaces/kube-system":
            return self.answer({"kind": "Namespace", "metadata": {"name": "kube-system",
                                "uid": "0e5ce4d6-51b4-4d43-9c6c-0b3d2f0f6a11"}})
        if url.path == "/api/v1/nodes":
            q = parse_qs(url.query)
            return self.nodes(int(q.get("continue", ["0"])[0]), int(q.get("limit", ["500"])[0]))
        self.send_error(404)


def million():
    """One NodeList of NODES minimal nodes, as chunks and their total length."""
    one = b'{"metadata":{"uid":"%08d"}}'
    head, tail = b'{"kind":"NodeList","metadata":{},"items":[', b"]}"

    def chunks():
        yield head
        for start in range(0, NODES, 10000):
            yield b",".join(one % i for i in range(start, min(NODES, start + 10000))) + (
                b"," if start + 10000 < NODES else b"")
        yield tail
    return chunks(), len(head) + NODES * (len(one % 0) + 1) - 1 + len(tail)


def one_string():
    """One NodeList of exactly ANSWER_BYTES, nearly all of it one osImage."""
    head = b'{"items":[{"metadata":{"uid":"u"},"status":{"nodeInfo":{"osImage":"'
    tail = b'"}}}]}'
    fill = ANSWER_BYTES - len(head) - len(tail)

    def chunks():
        yield head
        for k in range(0, fill, 1 << 20):
            yield b"x" * min(1 << 20, fill - k)
        yield tail
    return chunks(), ANSWER_BYTES


def dense(i):
    capacity = {f"hugepages-{k}Mi": "0" for k in range(28)}
    capacity.update({"cpu": "8", "memory": "32386544Ki", "pods": "110", "ephemeral-storage": "104845292Ki"})
    return {"metadata": {"uid": str(uuid.UUID(int=i + 1))}, "spec": {"providerID": f"aws:///eu-west-1a/i-{i:017x}"},
            "status": {"capacity": capacity}}


def worst(i):
    n = dense(i)
    n["status"]["capacity"]["memory"] = f"{32386544 + i}Ki"
    n["status"]["nodeInfo"] = {"osImage": f"Amazon Linux 2 build {i:06d} " + "x" * 40,
                               "kernelVersion": f"5.10.{i}-amzn2.x86_64"}
    return n


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[3], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
