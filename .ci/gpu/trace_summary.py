"""Summarises a Chrome trace written by ai.lorapar.engine.Profiler (torch's Kineto profiler):
GPU kernel time by kernel name, CPU op counts and time by op name, and the span of the trace.
Usage: python3 trace_summary.py TRACE.json [TOP]"""
import collections, json, sys

path = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
with open(path) as f:
    events = json.load(f).get("traceEvents", [])
kernels = collections.defaultdict(lambda: [0, 0.0])
ops = collections.defaultdict(lambda: [0, 0.0])
t_min, t_max = float("inf"), 0.0
for e in events:
    if e.get("ph") != "X":
        continue
    cat = e.get("cat", "")
    dur = float(e.get("dur", 0.0))
    ts = float(e.get("ts", 0.0))
    if cat == "kernel":
        k = kernels[e.get("name", "?")[:110]]
        k[0] += 1
        k[1] += dur
        t_min, t_max = min(t_min, ts), max(t_max, ts + dur)
    elif cat == "cpu_op":
        o = ops[e.get("name", "?")]
        o[0] += 1
        o[1] += dur
gpu = sum(v[1] for v in kernels.values())
print(f"TRACE {path}: {sum(v[0] for v in kernels.values())} kernels, GPU busy {gpu / 1e3:.1f} ms"
      + (f" of a {(t_max - t_min) / 1e3:.1f} ms span ({100 * gpu / max(t_max - t_min, 1):.0f}% busy)" if kernels else ""))
for name, (n, d) in sorted(kernels.items(), key=lambda kv: -kv[1][1])[:top]:
    print(f"  kernel {d / 1e3:9.2f} ms {100 * d / max(gpu, 1):5.1f}%  x{n:<6d} {name}")
print(f"TRACE cpu ops: {sum(v[0] for v in ops.values())} calls")
for name, (n, d) in sorted(ops.items(), key=lambda kv: -kv[1][0])[:top]:
    print(f"  op x{n:<6d} {d / 1e3:9.2f} ms  {name}")
