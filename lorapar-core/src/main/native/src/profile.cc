// LoRA-PAR JNI: torch's profiler (Kineto) behind DJL's JniUtils.startProfile / stopProfile, so that a
// benchmark can record where a step's time goes (every op the JNI runs, and with CUDA every kernel)
// into a Chrome trace. Nsight Systems cannot make reports on the device machines; this can.
//
// Optional by design: if this file does not compile against a libtorch, the library is built without
// it (.ci/gpu/run) and only profiling is missing (an UnsatisfiedLinkError when asked for).
#include <torch/csrc/autograd/profiler_kineto.h>

#include <set>
#include <string>

#include "lorapar_jni.h"

namespace {

namespace tap = torch::autograd::profiler;
namespace tpi = torch::profiler::impl;

const lorapar::FeatureRegistration kProfilerFeature("LORAPAR_PROFILER");

}  // namespace

LP_FN(void, torchStartProfile)(JNIEnv* env, jobject, jboolean useCuda, jboolean recordShape,
                               jboolean profileMemory) {
  LP_TRY tpi::ProfilerConfig config(tpi::ProfilerState::KINETO, recordShape == JNI_TRUE,
                                    profileMemory == JNI_TRUE);
  std::set<tpi::ActivityType> activities{tpi::ActivityType::CPU};
  if (useCuda == JNI_TRUE) {
    activities.insert(tpi::ActivityType::CUDA);
  }
  tap::prepareProfiler(config, activities);
  tap::enableProfiler(config, activities);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchStopProfile)(JNIEnv* env, jobject, jstring path) {
  LP_TRY const char* chars = env->GetStringUTFChars(path, nullptr);
  std::string file(chars);
  env->ReleaseStringUTFChars(path, chars);
  std::unique_ptr<tap::ProfilerResult> result = tap::disableProfiler();
  if (result) {
    result->save(file);
  }
  LP_CATCH(env, LP_VOID)
}
