// LoRA-PAR JNI: peak memory of torch's CUDA caching allocator (natives of the Java class
// ai.lorapar.engine.CudaMemory), the figure torch.cuda.max_memory_allocated() reports, so that
// benchmarks can put ours beside PyTorch's.
//
// Optional by design: this file registers the capability "LORAPAR_CUDA_MEMORY" and is compiled only
// with CUDA (like cuda_graph.cc).
#include <c10/cuda/CUDACachingAllocator.h>

#include "lorapar_jni.h"

#define LP_MEMORY_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_CudaMemory_##name

namespace {

const lorapar::FeatureRegistration kCudaMemoryFeature("LORAPAR_CUDA_MEMORY");

}  // namespace

// Peak bytes allocated by tensors on `device` since the start or the last resetPeak (all pools:
// StatType AGGREGATE, index 0).
LP_MEMORY_FN(jlong, peakAllocatedBytes)(JNIEnv* env, jclass, jint device) {
  LP_TRY auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  return static_cast<jlong>(
      stats.allocated_bytes[static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE)].peak);
  LP_CATCH(env, 0)
}

// Sets the peak to the bytes allocated now.
LP_MEMORY_FN(void, resetPeak)(JNIEnv* env, jclass, jint device) {
  LP_TRY c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
  LP_CATCH(env, LP_VOID)
}
