// LoRA-PAR JNI for DJL's PyTorch engine: shared helpers.
// Written for this project; implements the natives of ai.djl.pytorch.jni.PyTorchLibrary
// against a locally installed libtorch. A tensor handle is a heap-allocated torch::Tensor*.
#pragma once

#include <jni.h>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#define LP_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_djl_pytorch_jni_PyTorchLibrary_##name

// Every native body is wrapped so that no C++ exception crosses the JNI boundary: they become
// ai.djl.engine.EngineException on the Java side.
#define LP_TRY try {
#define LP_CATCH(env, ret)                                          \
  }                                                                 \
  catch (const c10::Error& e) {                                     \
    lorapar::throwEngine(env, e.what_without_backtrace());          \
  }                                                                 \
  catch (const std::exception& e) {                                 \
    lorapar::throwEngine(env, e.what());                            \
  }                                                                 \
  catch (...) {                                                     \
    lorapar::throwEngine(env, "unknown C++ exception in lorapar JNI"); \
  }                                                                 \
  return ret;

#define LP_VOID

// One-tensor -> tensor natives.
#define LP_UNARY(name, expr)                                               \
  LP_FN(jlong, name)(JNIEnv * env, jobject, jlong h) {                    \
    LP_TRY auto& t = lorapar::T(h);                                        \
    return lorapar::H(expr);                                               \
    LP_CATCH(env, 0)                                                       \
  }

// Two-tensor -> tensor natives.
#define LP_BINARY(name, expr)                                              \
  LP_FN(jlong, name)(JNIEnv * env, jobject, jlong a, jlong b) {           \
    LP_TRY auto& x = lorapar::T(a);                                        \
    auto& y = lorapar::T(b);                                               \
    return lorapar::H(expr);                                               \
    LP_CATCH(env, 0)                                                       \
  }

// Two-tensor in-place natives (first operand is modified).
#define LP_INPLACE2(name, stmt)                                            \
  LP_FN(void, name)(JNIEnv * env, jobject, jlong a, jlong b) {            \
    LP_TRY auto& x = lorapar::T(a);                                        \
    auto& y = lorapar::T(b);                                               \
    stmt;                                                                  \
    LP_CATCH(env, LP_VOID)                                                 \
  }

namespace lorapar {

void throwEngine(JNIEnv* env, const char* msg);

inline torch::Tensor& T(jlong h) {
  if (h == 0) {
    throw std::invalid_argument("null tensor handle");
  }
  return *reinterpret_cast<torch::Tensor*>(h);
}

inline jlong H(const torch::Tensor& t) { return reinterpret_cast<jlong>(new torch::Tensor(t)); }

inline std::optional<torch::Tensor> optT(jlong h) {
  if (h == 0) {
    return std::nullopt;
  }
  return T(h);
}

// DJL DataType.ordinal() <-> torch scalar types.
c10::ScalarType toScalarType(jint djlType);
jint fromScalarType(c10::ScalarType type);
// DJL layout ints: 0 dense, 1 sparse COO, 2 MKLDNN.
c10::Layout toLayout(jint layout);
jint fromLayout(c10::Layout layout);
// DJL device int[]{type, index}: type is c10::DeviceType (0 CPU, 1 CUDA, 13 MPS).
torch::Device toDevice(JNIEnv* env, jintArray device);

torch::TensorOptions options(JNIEnv* env, jint dtype, jint layout, jintArray device);

std::vector<int64_t> longs(JNIEnv* env, jlongArray arr);
jlongArray toJLongs(JNIEnv* env, c10::IntArrayRef values);
jlongArray toHandles(JNIEnv* env, const std::vector<torch::Tensor>& tensors);
std::vector<torch::Tensor> fromHandles(JNIEnv* env, jlongArray handles);

// Capability names added to torchShowConfig by optional sources (e.g. fused.cc registers
// "LORAPAR_FUSED" from a static initializer), so a capability is advertised only when the source
// that implements it was compiled into the library.
std::vector<std::string>& extraFeatures();

struct FeatureRegistration {
  explicit FeatureRegistration(const char* name) { extraFeatures().emplace_back(name); }
};

// Whether the calling thread's current stream of a CUDA device is being captured into a CUDA graph.
// cuda_graph.cc (the one source built with CUDA's runtime headers) installs the probe; without it
// nothing is ever captured and this is false.
using CaptureProbe = bool (*)(const torch::Device&);
CaptureProbe& captureProbe();

inline bool capturing(const torch::Device& device) {
  CaptureProbe probe = captureProbe();
  return probe != nullptr && device.is_cuda() && probe(device);
}

}  // namespace lorapar
