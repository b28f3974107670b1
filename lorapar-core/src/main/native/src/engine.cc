// LoRA-PAR JNI: engine start-up, capabilities, grad mode, autograd, optimizer updates, deletion.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/function.h>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

namespace {

void addFeature(JNIEnv* env, jobject set, jmethodID add, const char* name) {
  jstring s = env->NewStringUTF(name);
  env->CallBooleanMethod(set, add, s);
  env->DeleteLocalRef(s);
}

// bf16 is probed natively (safe here: failures are C++ exceptions, not JVM aborts).
bool bf16Works(const torch::Device& device) {
  try {
    auto opts = torch::TensorOptions().dtype(c10::ScalarType::BFloat16).device(device);
    auto a = torch::ones({4, 4}, opts);
    auto c = a.matmul(a).sum().to(c10::ScalarType::Float).cpu();
    return c.item<float>() == 64.0f;
  } catch (...) {
    return false;
  }
}

}  // namespace

LP_FN(jboolean, torchIsGradMode)(JNIEnv* env, jobject) {
  LP_TRY return c10::GradMode::is_enabled() ? JNI_TRUE : JNI_FALSE;
  LP_CATCH(env, JNI_FALSE)
}

LP_FN(void, torchSetGradMode)(JNIEnv* env, jobject, jboolean enable) {
  LP_TRY c10::GradMode::set_enabled(enable == JNI_TRUE);
  LP_CATCH(env, LP_VOID)
}

LP_FN(jint, torchGetNumInteropThreads)(JNIEnv* env, jobject) {
  LP_TRY return static_cast<jint>(at::get_num_interop_threads());
  LP_CATCH(env, 0)
}

LP_FN(jint, torchGetNumThreads)(JNIEnv* env, jobject) {
  LP_TRY return static_cast<jint>(at::get_num_threads());
  LP_CATCH(env, 0)
}

LP_FN(void, torchSetNumInteropThreads)(JNIEnv* env, jobject, jint n) {
  LP_TRY at::set_num_interop_threads(n);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchSetNumThreads)(JNIEnv* env, jobject, jint n) {
  LP_TRY at::set_num_threads(n);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchSetBenchmarkCuDNN)(JNIEnv* env, jobject, jboolean enable) {
  LP_TRY at::globalContext().setBenchmarkCuDNN(enable == JNI_TRUE);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchManualSeed)(JNIEnv* env, jobject, jlong seed) {
  LP_TRY torch::manual_seed(static_cast<uint64_t>(seed));
  LP_CATCH(env, LP_VOID)
}

// Fills DJL's feature set, which Engine.hasCapability(name) reads.
LP_FN(void, torchShowConfig)(JNIEnv* env, jobject, jobject set) {
  LP_TRY jclass cls = env->GetObjectClass(set);
  jmethodID add = env->GetMethodID(cls, "add", "(Ljava/lang/Object;)Z");
  env->DeleteLocalRef(cls);
  if (add == nullptr) {
    return;
  }
  addFeature(env, set, add, "LORAPAR_JNI");
  bool cuda = torch::cuda::is_available();
  if (cuda) {
    addFeature(env, set, add, "CUDA");
    if (torch::cuda::cudnn_is_available()) {
      addFeature(env, set, add, "CUDNN");
    }
  }
  if (at::globalContext().hasMKL()) addFeature(env, set, add, "MKL");
  if (at::globalContext().hasMKLDNN()) addFeature(env, set, add, "MKLDNN");
  if (at::globalContext().hasOpenMP()) addFeature(env, set, add, "OPENMP");
  // "BF16": bf16 tensors work on every device this engine offers (the GPU when there is one).
  bool bf16 = cuda ? bf16Works(torch::Device(torch::kCUDA, 0)) : bf16Works(torch::Device(torch::kCPU));
  if (bf16) {
    addFeature(env, set, add, "BF16");
  }
  for (const auto& name : lorapar::extraFeatures()) {
    addFeature(env, set, add, name.c_str());
  }
  LP_CATCH(env, LP_VOID)
}

// torchStartProfile / torchStopProfile: profile.cc (optional source).

LP_FN(void, torchCudaEmptyCache)(JNIEnv*, jobject) {
  // Best effort: the caching allocator's cache is left alone (no CUDA headers needed to build).
}

LP_FN(void, torchDeleteTensor)(JNIEnv* env, jobject, jlong h) {
  LP_TRY delete reinterpret_cast<torch::Tensor*>(h);
  LP_CATCH(env, LP_VOID)
}

// ---- autograd ----

LP_FN(jboolean, torchRequiresGrad)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return T(h).requires_grad() ? JNI_TRUE : JNI_FALSE;
  LP_CATCH(env, JNI_FALSE)
}

LP_FN(jstring, torchGradFnName)(JNIEnv* env, jobject, jlong h) {
  LP_TRY auto fn = T(h).grad_fn();
  std::string name = fn ? fn->name() : std::string();
  return env->NewStringUTF(name.c_str());
  LP_CATCH(env, nullptr)
}

LP_FN(void, torchAttachGrad)(JNIEnv* env, jobject, jlong h, jboolean requiresGrad) {
  LP_TRY T(h).requires_grad_(requiresGrad == JNI_TRUE);
  LP_CATCH(env, LP_VOID)
}

LP_FN(jlong, torchGrad)(JNIEnv* env, jobject, jlong h) {
  LP_TRY const auto& g = T(h).grad();
  if (!g.defined()) {
    return 0;
  }
  return H(g);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchDetachGrad)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return H(T(h).detach());
  LP_CATCH(env, 0)
}

LP_FN(void, torchBackward)(JNIEnv* env, jobject, jlong h, jlong gradH, jboolean keepGraph,
                           jboolean createGraph) {
  LP_TRY torch::Tensor grad = gradH == 0 ? torch::Tensor() : T(gradH);
  T(h).backward(grad, keepGraph == JNI_TRUE, createGraph == JNI_TRUE);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, zeroGrad)(JNIEnv* env, jobject, jlong h) {
  LP_TRY torch::NoGradGuard guard;
  auto g = T(h).grad();
  if (g.defined()) {
    g.zero_();
  }
  LP_CATCH(env, LP_VOID)
}

// MXNet-style Adam as DJL's Adam optimizer calls it: lrCorrected = lr * sqrt(1-b2^t) / (1-b1^t).
LP_FN(void, adamUpdate)(JNIEnv* env, jobject, jlong weightH, jlong gradH, jlong meanH, jlong varH,
                        jfloat lr, jfloat lrCorrected, jfloat wd, jfloat rescaleGrad,
                        jfloat clipGrad, jfloat beta1, jfloat beta2, jfloat eps, jboolean adamw) {
  LP_TRY torch::NoGradGuard guard;
  auto& weight = T(weightH);
  auto& mean = T(meanH);
  auto& var = T(varH);
  auto grad = T(gradH).mul(rescaleGrad);
  if (clipGrad > 0) {
    grad = grad.clamp(-clipGrad, clipGrad);
  }
  if (adamw != JNI_TRUE && wd != 0) {
    grad = grad.add(weight, wd);
  }
  mean.mul_(beta1).add_(grad, 1.0 - beta1);
  var.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
  auto step = mean.div(var.sqrt().add(eps)).mul(lrCorrected);
  if (adamw == JNI_TRUE && wd != 0) {
    step = step.add(weight, static_cast<double>(lr) * wd);
  }
  weight.sub_(step);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, sgdUpdate)(JNIEnv* env, jobject, jlong weightH, jlong gradH, jlong stateH, jfloat lr,
                       jfloat wd, jfloat rescaleGrad, jfloat clipGrad, jfloat momentum) {
  LP_TRY torch::NoGradGuard guard;
  auto& weight = T(weightH);
  auto grad = T(gradH).mul(rescaleGrad);
  if (clipGrad > 0) {
    grad = grad.clamp(-clipGrad, clipGrad);
  }
  if (wd != 0) {
    grad = grad.add(weight, wd);
  }
  if (stateH != 0 && momentum != 0) {
    auto& state = T(stateH);
    state.mul_(momentum).sub_(grad, lr);
    weight.add_(state);
  } else {
    weight.sub_(grad, lr);
  }
  LP_CATCH(env, LP_VOID)
}
