// LoRA-PAR JNI: collectives between processes through libtorch's c10d (natives of the Java class
// ai.lorapar.engine.ProcessGroup).
//
// One process per device. The ranks meet at a c10d::TCPStore served by rank 0 (MASTER_ADDR:MASTER_PORT), then
// talk through c10d::ProcessGroupNCCL (CUDA tensors) or c10d::ProcessGroupGloo (CPU tensors), as
// torch.distributed.init_process_group does for one default group.
//
// Ordering: NCCL work runs on c10d's own stream; Work::wait() without a timeout makes the *current* CUDA stream
// of the tensors' device wait for it (the host does not wait: see WorkNCCL::wait in ProcessGroupNCCL.hpp, which
// blocks the host only with TORCH_NCCL_BLOCKING_WAIT or an explicit timeout), so the copy back out of the
// bucket and the optimizer step that follows are ordered after the collective. Gloo's wait() blocks the host.
//
// Optional by design: the headers of each backend exist only in a libtorch built with it, and are guarded by
// USE_C10D_GLOO / USE_C10D_NCCL; this file keys on LORAPAR_C10D_GLOO / LORAPAR_C10D_NCCL, which CMakeLists.txt
// defines (with the USE_ ones) only when the headers are really there: torch's CMake target defines USE_C10D_GLOO
// whenever torch was built with Gloo, even for a wheel without gloo's headers (pip torch 2.11). This
// file registers "LORAPAR_DISTRIBUTED" when it has at least one backend, "LORAPAR_GLOO" with Gloo and "LORAPAR_NCCL"
// with NCCL.
#if defined(LORAPAR_C10D_GLOO) || defined(LORAPAR_C10D_NCCL)

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#ifdef LORAPAR_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef LORAPAR_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "lorapar_jni.h"

#define LP_PG_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_ProcessGroup_##name

namespace {

const lorapar::FeatureRegistration kDistributedFeature("LORAPAR_DISTRIBUTED");
#ifdef LORAPAR_C10D_GLOO
const lorapar::FeatureRegistration kGlooFeature("LORAPAR_GLOO");
#endif
#ifdef LORAPAR_C10D_NCCL
const lorapar::FeatureRegistration kNcclFeature("LORAPAR_NCCL");
#endif

// ProcessGroup.Backend ordinals.
constexpr jint kBackendNccl = 0;
constexpr jint kBackendGloo = 1;

// The most a clean shutdown waits for the other ranks to arrive at it (they may be gone already).
constexpr std::chrono::milliseconds kCloseWait{30000};

struct Group {
  c10::intrusive_ptr<c10d::Store> store;    // the TCPStore itself (rank 0: also its server)
  c10::intrusive_ptr<c10d::Backend> backend;
#ifdef LORAPAR_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // == backend for NCCL, for shutdown/abort
#endif
  bool isNccl = false;
  int rank = 0;
  int size = 1;
  c10::Device device{c10::kCPU};
  std::chrono::milliseconds timeout{300000};

  std::string name() const {
    return std::string("ProcessGroup ") + (isNccl ? "NCCL" : "Gloo") + " rank " + std::to_string(rank) + " of " +
           std::to_string(size);
  }
};

Group& G(jlong h) {
  if (h == 0) {
    throw std::invalid_argument("null process group handle");
  }
  return *reinterpret_cast<Group*>(h);
}

// Runs `body`, turning a c10d error into one that names the group and the operation.
template <typename F>
auto withContext(const Group& g, const char* op, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    throw std::runtime_error(g.name() + ": " + op + " failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw std::runtime_error(g.name() + ": " + op + " failed: " + e.what());
  }
}

void checkTensors(const Group& g, const std::vector<torch::Tensor>& ts) {
  for (size_t i = 0; i < ts.size(); i++) {
    const auto& t = ts[i];
    TORCH_CHECK(t.defined(), "tensor ", i, " is undefined");
    TORCH_CHECK(t.layout() == c10::kStrided, "tensor ", i, " is not dense");
    TORCH_CHECK(t.device() == g.device, "tensor ", i, " is on ", t.device(), ", the group on ", g.device);
  }
}

// The tensors grouped by dtype, dtypes in order of first appearance (the same on every rank, since every rank
// passes the same list): each group becomes one bucket, i.e. one collective.
std::vector<std::vector<size_t>> bucketsByType(const std::vector<torch::Tensor>& ts) {
  std::vector<c10::ScalarType> types;
  std::vector<std::vector<size_t>> buckets;
  for (size_t i = 0; i < ts.size(); i++) {
    if (ts[i].numel() == 0) {
      continue;
    }
    auto it = std::find(types.begin(), types.end(), ts[i].scalar_type());
    if (it == types.end()) {
      types.push_back(ts[i].scalar_type());
      buckets.emplace_back();
      buckets.back().push_back(i);
    } else {
      buckets[it - types.begin()].push_back(i);
    }
  }
  return buckets;
}

// One contiguous tensor of a bucket: the tensor itself when it is alone and contiguous (the collective then
// works on it in place), else a flat copy of all of them.
torch::Tensor bucketBuffer(const std::vector<torch::Tensor>& ts, const std::vector<size_t>& bucket, bool& direct) {
  direct = bucket.size() == 1 && ts[bucket[0]].is_contiguous();
  if (direct) {
    return ts[bucket[0]];
  }
  std::vector<torch::Tensor> flat;
  flat.reserve(bucket.size());
  for (size_t i : bucket) {
    flat.push_back(ts[i].reshape({-1}));
  }
  return torch::cat(flat);
}

void copyBack(const std::vector<torch::Tensor>& ts, const std::vector<size_t>& bucket, const torch::Tensor& buffer) {
  int64_t offset = 0;
  for (size_t i : bucket) {
    const int64_t n = ts[i].numel();
    ts[i].copy_(buffer.narrow(0, offset, n).view(ts[i].sizes()));
    offset += n;
  }
}

bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

// Joins the job: TCPStore rendezvous (rank 0 serves it and waits for world-size - 1 clients), then the backend.
// With NCCL the communicator is created here (eager connect on the bound device), so a rank that never comes
// fails init after the timeout rather than the first collective.
LP_PG_FN(jlong, initNative)(JNIEnv* env, jclass, jint backend, jstring masterAddr, jint masterPort, jint rank,
                             jint worldSize, jint deviceIndex, jlong timeoutMillis) {
  LP_TRY const char* chars = env->GetStringUTFChars(masterAddr, nullptr);
  std::string host(chars);
  env->ReleaseStringUTFChars(masterAddr, chars);
  TORCH_CHECK(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank ", rank, " outside a world of size ", worldSize);
  TORCH_CHECK(masterPort > 0 && masterPort < 65536, "master port ", masterPort, " outside 1..65535");
  TORCH_CHECK(timeoutMillis > 0, "timeout ", timeoutMillis, " ms is not positive");

  auto g = std::make_unique<Group>();
  g->rank = rank;
  g->size = worldSize;
  g->timeout = std::chrono::milliseconds(timeoutMillis);
  g->isNccl = backend == kBackendNccl;
  g->device = g->isNccl ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(deviceIndex)) : c10::Device(c10::kCPU);

  withContext(*g, "rendezvous", [&] {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(masterPort);
    opts.isServer = rank == 0;
    opts.numWorkers = static_cast<std::size_t>(worldSize);
    opts.waitWorkers = true;
    opts.timeout = g->timeout;
    // The server's libuv backend (the default since torch 2.4; USE_LIBUV=0 turns it off, as in Python); a
    // libtorch built without libuv refuses it, then the classic backend serves.
    const char* uv = std::getenv("USE_LIBUV");
    opts.useLibUV = uv == nullptr || std::string(uv) != "0";
    try {
      g->store = c10::make_intrusive<c10d::TCPStore>(host, opts);
    } catch (const c10::Error& e) {
      if (!opts.useLibUV || std::string(e.what_without_backtrace()).find("libuv") == std::string::npos) {
        throw;
      }
      opts.useLibUV = false;
      g->store = c10::make_intrusive<c10d::TCPStore>(host, opts);
    }
  });
  // The group's keys under a prefix, as torch.distributed does for its default group.
  auto groupStore = c10::make_intrusive<c10d::PrefixStore>("lorapar/0", g->store);

  if (g->isNccl) {
#ifdef LORAPAR_C10D_NCCL
    TORCH_CHECK(deviceIndex >= 0, "NCCL needs a CUDA device index, got ", deviceIndex);
    withContext(*g, "NCCL init", [&] {
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g->timeout;
      g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(groupStore, rank, worldSize, opts);
      g->backend = g->nccl;
      g->backend->setBoundDeviceId(g->device);
      g->backend->eagerConnectSingleDevice(g->device);
    });
#else
    TORCH_CHECK(false, "this lorapar JNI was built without NCCL (a libtorch without CUDA)");
#endif
  } else if (backend == kBackendGloo) {
#ifdef LORAPAR_C10D_GLOO
    withContext(*g, "Gloo init", [&] {
      auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
      // The network interface Gloo binds: GLOO_SOCKET_IFNAME as torch.distributed reads it, else loopback for a
      // job on one host, else this host's name.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != '\0') {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (isLoopback(host)) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(groupStore, rank, worldSize, opts);
    });
#else
    TORCH_CHECK(false, "this lorapar JNI was built without Gloo");
#endif
  } else {
    TORCH_CHECK(false, "unknown backend ", backend);
  }
  return reinterpret_cast<jlong>(g.release());
  LP_CATCH(env, 0)
}

// Sums the tensors over all ranks in place: per dtype one bucket, one all-reduce. All buckets are enqueued
// before any is waited for; on NCCL the copies back run on the current stream after it waited for the sum.
LP_PG_FN(void, allReduceSumNative)(JNIEnv* env, jclass, jlong handle, jlongArray handles) {
  LP_TRY Group& g = G(handle);
  const auto ts = lorapar::fromHandles(env, handles);
  torch::NoGradGuard noGrad;
  withContext(g, "allReduceSum", [&] {
    checkTensors(g, ts);
    const auto buckets = bucketsByType(ts);
    std::vector<torch::Tensor> buffers;
    std::vector<bool> direct;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const auto& bucket : buckets) {
      bool d = false;
      std::vector<torch::Tensor> one{bucketBuffer(ts, bucket, d)};
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      works.push_back(g.backend->allreduce(one, opts));
      buffers.push_back(one[0]);
      direct.push_back(d);
    }
    for (size_t b = 0; b < buckets.size(); b++) {
      works[b]->wait();
      if (!direct[b]) {
        copyBack(ts, buckets[b], buffers[b]);
      }
    }
  });
  LP_CATCH(env, LP_VOID)
}

// Replaces the tensors by rank `root`'s, in place: per dtype one bucket, one broadcast.
LP_PG_FN(void, broadcastNative)(JNIEnv* env, jclass, jlong handle, jlongArray handles, jint root) {
  LP_TRY Group& g = G(handle);
  const auto ts = lorapar::fromHandles(env, handles);
  torch::NoGradGuard noGrad;
  withContext(g, "broadcast", [&] {
    TORCH_CHECK(root >= 0 && root < g.size, "root ", root, " outside a world of size ", g.size);
    checkTensors(g, ts);
    const auto buckets = bucketsByType(ts);
    std::vector<torch::Tensor> buffers;
    std::vector<bool> direct;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const auto& bucket : buckets) {
      bool d = false;
      std::vector<torch::Tensor> one{bucketBuffer(ts, bucket, d)};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      opts.rootTensor = 0;
      works.push_back(g.backend->broadcast(one, opts));
      buffers.push_back(one[0]);
      direct.push_back(d);
    }
    for (size_t b = 0; b < buckets.size(); b++) {
      works[b]->wait();
      if (!direct[b] && g.rank != root) {
        copyBack(ts, buckets[b], buffers[b]);
      }
    }
  });
  LP_CATCH(env, LP_VOID)
}

// Returns when every rank has called it. NCCL: an all-reduce of one element on the group's device, then the host
// waits for the current stream (so the device work before the barrier is done everywhere); Gloo: its barrier.
LP_PG_FN(void, barrierNative)(JNIEnv* env, jclass, jlong handle) {
  LP_TRY Group& g = G(handle);
  torch::NoGradGuard noGrad;
  withContext(g, "barrier", [&] {
    if (g.isNccl) {
      std::vector<torch::Tensor> one{torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat32).device(g.device))};
      g.backend->allreduce(one)->wait();
      (void)one[0].cpu();  // a blocking copy on the current stream, which waits for the all-reduce
    } else {
      g.backend->barrier()->wait();
    }
  });
  LP_CATCH(env, LP_VOID)
}

// Leaves the job and frees the group. Clean (abort false): the ranks meet once more through the store (at most
// kCloseWait, as some may be gone), so that rank 0 does not take the store's server away while others still use
// it, then NCCL's shutdown (pending work finishes). Abort: NCCL's abort (communicators torn down at once).
LP_PG_FN(void, destroyNative)(JNIEnv* env, jclass, jlong handle, jboolean abort) {
  LP_TRY std::unique_ptr<Group> g(&G(handle));
  if (!abort && g->size > 1) {
    try {
      const std::string key = "lorapar/closed";
      if (g->store->add(key, 1) >= g->size) {
        g->store->set(key + "/all", std::vector<uint8_t>{1});
      }
      g->store->wait({key + "/all"}, std::min(g->timeout, kCloseWait));
    } catch (const std::exception&) {
      // another rank is gone or late: shut down anyway
    }
  }
#ifdef LORAPAR_C10D_NCCL
  if (g->nccl) {
    if (abort) {
      g->nccl->abort();
    } else {
      g->nccl->shutdown();
    }
  }
  g->nccl.reset();
#endif
  g->backend.reset();  // Gloo: its destructor joins its worker threads
  g->store.reset();
  LP_CATCH(env, LP_VOID)
}

#endif  // LORAPAR_C10D_GLOO || LORAPAR_C10D_NCCL
