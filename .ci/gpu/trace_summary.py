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

# Kernel time by the op that launched it: each kernel's launch (a cuda_runtime event with the same
# correlation id) lies inside a stack of cpu_op events on its thread; the innermost op is the aten op
# that launched it, the autograd node (backward) or "forward" says which pass.
launch = {}
for e in events:
    if e.get("ph") == "X" and e.get("cat") in ("cuda_runtime", "cuda_driver"):
        c = (e.get("args") or {}).get("correlation")
        if c is not None:
            launch[c] = (e.get("tid"), float(e.get("ts", 0.0)))
by_tid = collections.defaultdict(list)
for e in events:
    if e.get("ph") == "X" and e.get("cat") == "cpu_op":
        by_tid[e.get("tid")].append((float(e.get("ts", 0.0)), float(e.get("dur", 0.0)), e.get("name", "?")))
queries = collections.defaultdict(list)
for e in events:
    if e.get("ph") == "X" and e.get("cat") == "kernel":
        c = (e.get("args") or {}).get("correlation")
        if c in launch:
            tid, ts = launch[c]
            queries[tid].append((ts, float(e.get("dur", 0.0)), e.get("name", "?")))
by_op = collections.defaultdict(lambda: [0, 0.0])
by_node = collections.defaultdict(lambda: [0, 0.0])
for tid, qs in queries.items():
    ops_t = sorted(by_tid.get(tid, []), key=lambda o: (o[0], -o[1]))
    qs.sort()
    stack, i = [], 0
    for ts, dur, kname in qs:
        while i < len(ops_t) and ops_t[i][0] <= ts:
            while stack and stack[-1][0] + stack[-1][1] < ops_t[i][0]:
                stack.pop()
            stack.append(ops_t[i])
            i += 1
        while stack and stack[-1][0] + stack[-1][1] < ts:
            stack.pop()
        inner = stack[-1][2] if stack else "?"
        node = next((o[2].split(": ", 1)[-1] for o in stack if o[2].startswith("autograd::engine::evaluate_function")),
                    None) or "forward " + next((o[2] for o in stack if o[2].startswith("lorapar::")), "")
        k = by_op[inner + "  <" + node + ">"]
        k[0] += 1
        k[1] += dur
        n = by_node[node]
        n[0] += 1
        n[1] += dur
print("TRACE GPU time by autograd node (backward) / forward")
for name, (n, d) in sorted(by_node.items(), key=lambda kv: -kv[1][1])[:top]:
    print(f"  node {d / 1e3:9.2f} ms {100 * d / max(gpu, 1):5.1f}%  x{n:<6d} {name}")
print("TRACE GPU time by launching op <node>")
for name, (n, d) in sorted(by_op.items(), key=lambda kv: -kv[1][1])[:2 * top]:
    print(f"  op {d / 1e3:9.2f} ms {100 * d / max(gpu, 1):5.1f}%  x{n:<6d} {name}")

# Where the GPU waits for the host: the largest gaps between consecutive kernels, each with the
# outermost cpu ops of the launching thread around the launch of the kernel that ends the gap.
kern = sorted((float(e.get("ts", 0.0)), float(e.get("dur", 0.0)), (e.get("args") or {}).get("correlation"))
              for e in events if e.get("ph") == "X" and e.get("cat") == "kernel")
gaps = []
end = None
for ts, dur, c in kern:
    if end is not None and ts - end > 0:
        gaps.append((ts - end, end, c))
    end = ts + dur if end is None else max(end, ts + dur)
total_gap = sum(g[0] for g in gaps)
print(f"TRACE idle GPU: {total_gap / 1e3:.1f} ms in {len(gaps)} gaps; "
      f"{sum(g[0] for g in gaps if g[0] > 200) / 1e3:.1f} ms in gaps over 0.2 ms")
outer = {tid: sorted(v, key=lambda o: (o[0], -o[1])) for tid, v in by_tid.items()}
def outermost(tid, ts):
    best = None
    for o in outer.get(tid, []):
        if o[0] > ts:
            break
        if o[0] + o[1] >= ts and (best is None or o[1] > best[1]):
            best = o
    return best[2] if best else "?"
def busiest(tid, t0, t1):
    # the op of the launching thread (outermost ones first) that covers most of [t0, t1]
    best, cover = "?", 0.0
    for o in outer.get(tid, []):
        if o[0] > t1:
            break
        c = min(o[0] + o[1], t1) - max(o[0], t0)
        if c > cover * 1.5:
            best, cover = o[2], c
    return f"{best} ({cover / 1e3:.2f} ms of it)"
for g, at_end, c in sorted(gaps, reverse=True)[:15]:
    tid, lts = launch.get(c, (None, 0.0))
    print(f"  gap {g / 1e3:7.2f} ms, host busy in: {busiest(tid, at_end, at_end + g)}; ends with a kernel of: "
          f"{outermost(tid, lts)}")
