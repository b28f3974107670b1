// LoRA-PAR JNI: conversions between DJL's JNI conventions and libtorch types.
#include "lorapar_jni.h"

namespace lorapar {

void throwEngine(JNIEnv* env, const char* msg) {
  if (env->ExceptionCheck()) {
    return;  // a Java exception is already pending; keep it
  }
  jclass cls = env->FindClass("ai/djl/engine/EngineException");
  if (cls == nullptr) {
    env->ExceptionClear();
    cls = env->FindClass("java/lang/RuntimeException");
  }
  if (cls != nullptr) {
    env->ThrowNew(cls, msg == nullptr ? "lorapar JNI error" : msg);
    env->DeleteLocalRef(cls);
  }
}

c10::ScalarType toScalarType(jint djlType) {
  switch (djlType) {
    case 0: return c10::ScalarType::Float;
    case 1: return c10::ScalarType::Double;
    case 2: return c10::ScalarType::Half;
    case 3: return c10::ScalarType::Byte;
    case 4: return c10::ScalarType::Int;
    case 5: return c10::ScalarType::Char;
    case 6: return c10::ScalarType::Long;
    case 7: return c10::ScalarType::Bool;
    case 8: return c10::ScalarType::ComplexFloat;
    case 11: return c10::ScalarType::BFloat16;
    case 12: return c10::ScalarType::UInt64;
    case 13: return c10::ScalarType::UInt32;
    case 14: return c10::ScalarType::UInt16;
    case 15: return c10::ScalarType::Short;
    default:
      throw std::invalid_argument("unsupported DJL data type ordinal: " + std::to_string(djlType));
  }
}

jint fromScalarType(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float: return 0;
    case c10::ScalarType::Double: return 1;
    case c10::ScalarType::Half: return 2;
    case c10::ScalarType::Byte: return 3;
    case c10::ScalarType::Int: return 4;
    case c10::ScalarType::Char: return 5;
    case c10::ScalarType::Long: return 6;
    case c10::ScalarType::Bool: return 7;
    case c10::ScalarType::ComplexFloat: return 8;
    case c10::ScalarType::BFloat16: return 11;
    case c10::ScalarType::UInt64: return 12;
    case c10::ScalarType::UInt32: return 13;
    case c10::ScalarType::UInt16: return 14;
    case c10::ScalarType::Short: return 15;
    default: return 9;  // UNKNOWN
  }
}

c10::Layout toLayout(jint layout) {
  switch (layout) {
    case 0: return c10::Layout::Strided;
    case 1: return c10::Layout::Sparse;
    case 2: return c10::Layout::Mkldnn;
    default: throw std::invalid_argument("unsupported layout: " + std::to_string(layout));
  }
}

jint fromLayout(c10::Layout layout) {
  if (layout == c10::Layout::Strided) return 0;
  if (layout == c10::Layout::Sparse) return 1;
  if (layout == c10::Layout::Mkldnn) return 2;
  throw std::invalid_argument("unsupported tensor layout");
}

torch::Device toDevice(JNIEnv* env, jintArray device) {
  if (device == nullptr || env->GetArrayLength(device) < 2) {
    throw std::invalid_argument("device must be int[]{type, index}");
  }
  jint v[2];
  env->GetIntArrayRegion(device, 0, 2, v);
  auto type = static_cast<c10::DeviceType>(v[0]);
  if (type == c10::DeviceType::CPU) {
    return torch::Device(torch::kCPU);
  }
  return torch::Device(type, static_cast<c10::DeviceIndex>(v[1] < 0 ? 0 : v[1]));
}

torch::TensorOptions options(JNIEnv* env, jint dtype, jint layout, jintArray device) {
  return torch::TensorOptions()
      .dtype(toScalarType(dtype))
      .layout(toLayout(layout))
      .device(toDevice(env, device));
}

std::vector<int64_t> longs(JNIEnv* env, jlongArray arr) {
  std::vector<int64_t> out;
  if (arr == nullptr) {
    return out;
  }
  jsize n = env->GetArrayLength(arr);
  out.resize(static_cast<size_t>(n));
  if (n > 0) {
    env->GetLongArrayRegion(arr, 0, n, reinterpret_cast<jlong*>(out.data()));
  }
  return out;
}

jlongArray toJLongs(JNIEnv* env, c10::IntArrayRef values) {
  jsize n = static_cast<jsize>(values.size());
  jlongArray arr = env->NewLongArray(n);
  if (arr != nullptr && n > 0) {
    std::vector<jlong> tmp(values.begin(), values.end());
    env->SetLongArrayRegion(arr, 0, n, tmp.data());
  }
  return arr;
}

jlongArray toHandles(JNIEnv* env, const std::vector<torch::Tensor>& tensors) {
  std::vector<int64_t> hs;
  hs.reserve(tensors.size());
  for (const auto& t : tensors) {
    hs.push_back(static_cast<int64_t>(H(t)));
  }
  return toJLongs(env, hs);
}

std::vector<torch::Tensor> fromHandles(JNIEnv* env, jlongArray handles) {
  std::vector<torch::Tensor> out;
  for (int64_t h : longs(env, handles)) {
    out.push_back(T(static_cast<jlong>(h)));
  }
  return out;
}

CaptureProbe& captureProbe() {
  static CaptureProbe probe = nullptr;
  return probe;
}

std::vector<std::string>& extraFeatures() {
  static std::vector<std::string> features;  // built on first use: safe from any static initializer
  return features;
}

}  // namespace lorapar
