-- wrk script for bench/ingest: POSTs the seed example with 3 nodes (~750
-- bytes), each with its own reportID and one of 10,000 cluster IDs, and
-- counts 204s and everything else.

local body = [[{"metadata": {"timestamp": "1437174715", "reportID": "%s"},
 "payload": {"clusterID": "bench-cluster-%d", "nodes": [
  {"status": {"capacity": {"cpu": "1", "memory": "505020Ki", "pods": "40"},
   "nodeInfo": {"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2", "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}},
  {"status": {"capacity": {"cpu": "2", "memory": "1010040Ki", "pods": "40"},
   "nodeInfo": {"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2", "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}},
  {"status": {"capacity": {"cpu": "4", "memory": "2020080Ki", "pods": "110"},
   "nodeInfo": {"osImage": "CoreOS 766.3.0", "kernelVersion": "4.1.7-coreos", "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.7.1"}}}]}}]]

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n, acked, rejected = 0, 0, 0
end

function request()
  n = n + 1
  local headers = {["Content-Type"] = "application/json"}
  return wrk.format("POST", "/api/v1/stats", headers, string.format(body, "bench-" .. id .. "-" .. n, math.random(10000)))
end

function response(status, headers, body)
  if status == 204 then acked = acked + 1 else rejected = rejected + 1 end
end

function done(summary, latency, requests)
  local a, r = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked")
    r = r + t:get("rejected")
  end
  local e = summary.errors
  io.write(string.format("RESULT acked=%d rejected=%d socket_errors=%d duration_us=%d p50_ms=%.2f p99_ms=%.2f mean_ms=%.3f\n",
    a, r, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
