// LoRA-PAR JNI: CUDA memory statistics (natives of the Java class ai.lorapar.engine.CudaMemory).
//
// Peak memory of a run as PyTorch reports it: torch.cuda.max_memory_allocated() and
// torch.cuda.reset_peak_memory_stats() read and reset the caching allocator's statistics, which is
// what these two natives do, so benchmark figures compare with the peer's.
//
// Optional by design: this file registers the capability "LORAPAR_CUDA_MEMORY"; without it (e.g. a
// libtorch without CUDA) Java reports no peak memory.
#include <c10/cuda/CUDACachingAllocator.h>

#include "lorapar_jni.h"

#define LP_MEM_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_CudaMemory_##name

namespace {

const lorapar::FeatureRegistration kCudaMemoryFeature("LORAPAR_CUDA_MEMORY");

}  // namespace

// The largest number of bytes allocated at once on `device` since the last reset, over all pools
// (allocated_bytes[0] is StatType::AGGREGATE, "allocated_bytes.all.peak").
LP_MEM_FN(jlong, peakAllocatedNative)(JNIEnv* env, jclass, jint device) {
  LP_TRY const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  return static_cast<jlong>(stats.allocated_bytes[0].peak);
  LP_CATCH(env, 0)
}

// Resets the peak statistics of `device` to their current values.
LP_MEM_FN(void, resetPeakNative)(JNIEnv* env, jclass, jint device) {
  LP_TRY c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
  LP_CATCH(env, LP_VOID)
}
