#!/usr/bin/env python3
"""The pgbench script for bench/ingest: one report per transaction, through
the very statements the collector runs for a batch (taken from
collector/src/ingest/batch.rs, so they cannot drift), with the facts the
collector derives from bench/ingest.lua's 3-node report. A random reportID
and one of 10,000 cluster IDs per transaction, as wrk sends.

    bench/pgbench-ingest.py > insert.sql
"""
import json
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
batch = (root / "collector/src/ingest/batch.rs").read_text()
lua = (root / "bench/ingest.lua").read_text()


def statement(name):
    sql = re.search(r'const %s: &str = "(.*?)";' % name, batch, re.S).group(1)
    return sql.replace('\\"', '"').strip()


def text(v):
    return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"


def array(values, kind):
    return "ARRAY[%s]::%s[]" % (", ".join(values), kind)


body = re.search(r"local body = \[\[(.*?)\]\]", lua, re.S).group(1)
report = json.loads(body.replace('"%s"', '"x"').replace("%d", "1"))
payload = json.dumps(report["payload"]).replace("'", "''")
payload = "'" + payload.replace("bench-cluster-1", "bench-cluster-' || :c || '") + "'"

# The facts.rs of that payload: no masterVersion, three nodes of three
# shapes (one group each), no accelerators or extensions.
units = {"Ki": 1024}
groups = []
for node in report["payload"]["nodes"]:
    cap, info = node["status"]["capacity"], node["status"]["nodeInfo"]
    memory = int(cap["memory"][:-2]) * units[cap["memory"][-2:]]
    groups.append((info["kubeletVersion"], info["osImage"], info["kernelVersion"],
                   info["containerRuntimeVersion"], int(cap["cpu"]) * 1000, memory, int(cap["pods"])))

key = "'id:pgbench-' || :r"
micros = "(extract(epoch FROM now()) * 1000000)::bigint"
cluster = "'bench-cluster-' || :c"
stage = [array(["0"], "integer"), array([key], "text"), array([micros], "bigint"),
         array([cluster], "text"), array(["NULL"], "text"), array(["NULL"], "text"),
         array(["'unknown'"], "text"), array(["NULL"], "text"), array(["3"], "integer"),
         array(["0"], "integer"), array(["'{}'"], "text"), array(["'{}'"], "text")]
metadata = ("jsonb_build_object('timestamp', '1437174715', 'reportID', 'pgbench-' || :r, "
            "'received_at', extract(epoch FROM now())::bigint::text, 'received_from', '127.0.0.1')::text")
reports = [array(["0"], "integer"), array(["'pgbench-' || :r"], "text"),
           array(["'127.0.0.1'"], "text"), array([metadata], "text"),
           array([payload], "text")]
n = len(groups)
nodes = [array(["0"] * n, "integer")]
for i in range(4):
    nodes.append(array([text(g[i]) for g in groups], "text"))
nodes += [array(["NULL"] * n, "text")] * 3
nodes += [array([str(g[4]) for g in groups], "bigint"), array([str(g[5]) for g in groups], "bigint"),
          array(["NULL"] * n, "bigint"), array([str(g[6]) for g in groups], "bigint"),
          array(["NULL"] * n, "bigint"), array(["1"] * n, "integer")]


# Its facets (facts.rs Facts::facets): the cluster's four breakdowns, then
# each node breakdown's distinct values with their nodes.
facets = [("distribution", "unknown", 3), ("minor_version", None, 3),
          ("master_version", None, 3), ("volunteer_version", None, 3)]
for key, index in [("kubelet_version", 0), ("os_image", 1), ("container_runtime_version", 3)]:
    values = {}
    for g in groups:
        values[g[index]] = values.get(g[index], 0) + 1
    facets += [(key, v, n) for v, n in sorted(values.items())]
facets += [(key, None, 3) for key in ("architecture", "operating_system", "cloud_provider")]
facet_params = [array(["0"] * len(facets), "integer"), array([text(f[0]) for f in facets], "text"),
                array([text(f[1]) for f in facets], "text"), array([str(f[2]) for f in facets], "bigint")]


# The facets /stats publishes (query.rs BREAKDOWNS, batch.rs LATEST's $1).
query = (root / "collector/src/insight/stats/query.rs").read_text()
breakdowns = re.search(r"const BREAKDOWNS.*?= \[(.*?)\n\];", query, re.S).group(1)
published = array([text(f) for f in re.findall(r'"([^"]*)",?\s*\)', breakdowns)], "text")


def bind(sql, params):
    for i in reversed(range(len(params))):
        sql = sql.replace("$%d" % (i + 1), params[i])
    return sql


print(r"\set r random(1, 9000000000000000000)")
print(r"\set c random(1, 10000)")
print("BEGIN;")
print(statement("INCOMING") + ";")
print(bind(statement("STAGE"), stage) + ";")
print(statement("DEDUPLICATE") + ";")
print(bind(statement("REPORTS"), reports) + ";")
print(bind(statement("PENDING"), facet_params) + ";")
print(statement("FRESH") + ";")
print(statement("LOCK") + ";")
print(statement("CLUSTERS") + ";")
print(bind(statement("LATEST"), [published]) + ";")
print(bind(statement("NODES"), nodes) + ";")
print(statement("DAYS") + ";")
print("COMMIT;")
