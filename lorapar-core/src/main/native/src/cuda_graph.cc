// LoRA-PAR JNI: CUDA graphs (natives of the Java class ai.lorapar.engine.CudaGraph).
//
// A decode step at small batch is a thousand small kernels; issued one by one through DJL's NDArray
// API each costs tens of microseconds of host time, far more than the kernel itself. Captured once
// into a CUDA graph (torch's at::cuda::CUDAGraph, the machinery behind torch.cuda.graphs), the
// whole step is replayed with one launch. The Java side issues the step's ordinary NDArray ops
// between begin and end; torch's caching allocator serves their memory from the graph's private
// pool, and the default CUDA generator is registered with the graph, so random draws differ from
// replay to replay.
//
// Optional by design: this file registers the capability "LORAPAR_CUDA_GRAPH"; without it (e.g. a
// libtorch without CUDA) Java issues every step op by op.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>
#include <utility>

#include "lorapar_jni.h"

#define LP_GRAPH_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_CudaGraph_##name

namespace {

const lorapar::FeatureRegistration kCudaGraphFeature("LORAPAR_CUDA_GRAPH");

// lorapar::capturing(device): whether this thread's current stream of the device is being captured
// (natives that draw random numbers from their own generators switch to the default one there).
bool currentStreamCapturing(const torch::Device& device) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.has_index() ? device.index() : -1).stream();
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return status != cudaStreamCaptureStatusNone;
}

const struct CaptureProbeInstaller {
  CaptureProbeInstaller() { lorapar::captureProbe() = &currentStreamCapturing; }
} kCaptureProbeInstaller;

// The id of a graph's memory pool (a pair of capture ids; named without its namespace, which moved
// between torch versions).
using PoolId = decltype(std::declval<at::cuda::CUDAGraph&>().pool());

// One side stream session: the stream made current for warm-up and capture (capture cannot use
// the default stream), the stream that was current before, and the graph once captured.
struct GraphSession {
  c10::DeviceIndex device;
  c10::cuda::CUDAStream previous;
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStreamGuard> guard;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  bool capturing = false;

  GraphSession(c10::DeviceIndex d, c10::cuda::CUDAStream prev, c10::cuda::CUDAStream s)
      : device(d), previous(prev), side(s) {}
};

GraphSession& S(jlong h) {
  if (h == 0) {
    throw std::invalid_argument("null CUDA graph handle");
  }
  return *reinterpret_cast<GraphSession*>(h);
}

// `waiter` waits (on the device) for all work queued so far on `producer`.
void streamWaits(const c10::cuda::CUDAStream& waiter, const c10::cuda::CUDAStream& producer) {
  at::cuda::CUDAEvent ev;
  ev.record(producer);
  ev.block(waiter);
}

}  // namespace

// Makes a side stream of `device` current for this thread, after the work queued so far.
LP_GRAPH_FN(jlong, enterNative)(JNIEnv* env, jclass, jint device) {
  LP_TRY auto d = static_cast<c10::DeviceIndex>(device);
  c10::cuda::CUDAGuard deviceGuard(d);
  c10::cuda::CUDAStream prev = c10::cuda::getCurrentCUDAStream(d);
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, d);
  streamWaits(side, prev);
  auto* s = new GraphSession(d, prev, side);
  s->guard.emplace(side);
  return reinterpret_cast<jlong>(s);
  LP_CATCH(env, 0)
}

// Starts capturing the side stream. Thread-local capture mode: another thread's CUDA calls do not
// invalidate this capture, and a synchronising call on this thread fails (instead of silently
// breaking the graph).
// With `poolOf` non-zero, the capture allocates from the memory pool of that session's graph (graphs
// replayed one after another may share one: each one's temporaries are dead when the next runs).
LP_GRAPH_FN(void, beginNative)(JNIEnv* env, jclass, jlong h, jlong poolOf) {
  LP_TRY auto& s = S(h);
  if (s.graph) {
    throw std::logic_error("this CUDA graph session has already captured a graph");
  }
  // torch captures on the current device's current stream: the session's device, whatever the caller's is
  // (the side stream is current for that device only)
  c10::cuda::CUDAGuard deviceGuard(s.device);
  PoolId pool{0, 0};  // {0, 0}: a new private pool
  if (poolOf != 0) {
    auto& other = S(poolOf);
    if (!other.graph || other.capturing) {
      throw std::logic_error("the CUDA graph whose memory pool should be shared has not been captured");
    }
    pool = other.graph->pool();
  }
  // everything queued before (on both streams) is done: nothing in flight reads memory that the
  // capture's private pool might hand out
  s.side.synchronize();
  s.previous.synchronize();
  s.graph = std::make_unique<at::cuda::CUDAGraph>();
  s.graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
  s.capturing = true;
  LP_CATCH(env, LP_VOID)
}

// Ends the capture and instantiates the graph.
LP_GRAPH_FN(void, endNative)(JNIEnv* env, jclass, jlong h) {
  LP_TRY auto& s = S(h);
  if (!s.capturing) {
    throw std::logic_error("no CUDA graph capture in progress");
  }
  c10::cuda::CUDAGuard deviceGuard(s.device);  // capture_end checks the current device's current stream
  s.capturing = false;
  s.graph->capture_end();
  LP_CATCH(env, LP_VOID)
}

// Leaves the side stream: the previous stream waits for the side stream's work and is current
// again. With a capture still in progress (an op failed during it), the capture is ended and its
// graph dropped; the CUDA error that broke it is cleared.
LP_GRAPH_FN(void, exitNative)(JNIEnv* env, jclass, jlong h) {
  LP_TRY auto& s = S(h);
  // the session's device while ending a capture and dropping the stream guard; the caller's device after
  c10::cuda::CUDAGuard deviceGuard(s.device);
  if (s.capturing) {
    s.capturing = false;
    try {
      s.graph->capture_end();
    } catch (const std::exception&) {
      // the capture was invalidated by the failure that brought us here
    }
    s.graph.reset();
    (void)cudaGetLastError();
  }
  if (s.guard.has_value()) {
    streamWaits(s.previous, s.side);
    s.guard.reset();
  }
  LP_CATCH(env, LP_VOID)
}

// Replays the captured graph on the current stream (after everything queued on it).
LP_GRAPH_FN(void, replayNative)(JNIEnv* env, jclass, jlong h) {
  LP_TRY auto& s = S(h);
  if (!s.graph || s.capturing) {
    throw std::logic_error("no captured CUDA graph to replay");
  }
  if (s.guard.has_value()) {
    throw std::logic_error("replay after leaving the capture stream (close the capture first)");
  }
  c10::cuda::CUDAGuard deviceGuard(s.device);
  s.graph->replay();
  LP_CATCH(env, LP_VOID)
}

// Frees the graph and its private memory pool (once no tensor of the pool is alive).
LP_GRAPH_FN(void, deleteNative)(JNIEnv* env, jclass, jlong h) {
  LP_TRY auto* s = reinterpret_cast<GraphSession*>(h);
  if (s == nullptr) {
    return;
  }
  if (s->capturing || s->guard.has_value()) {
    throw std::logic_error("delete of a CUDA graph session that is still capturing");
  }
  // the graph's kernels may still be running on the current stream
  s->previous.synchronize();
  delete s;
  LP_CATCH(env, LP_VOID)
}

// Seeds torch's default CUDA generator of `device` (its offset restarts at 0): what a captured step's
// random draws follow, replay after replay.
LP_GRAPH_FN(void, seedNative)(JNIEnv* env, jclass, jint device, jlong seed) {
  LP_TRY at::Generator gen =
      at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device)));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(static_cast<uint64_t>(seed));
  LP_CATCH(env, LP_VOID)
}
