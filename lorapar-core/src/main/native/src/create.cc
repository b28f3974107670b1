// LoRA-PAR JNI: tensor creation, metadata, copies, device/dtype conversion and data read-back.
#include <cstring>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

namespace {

jlong finish(torch::Tensor t, jboolean requiresGrad) {
  if (requiresGrad == JNI_TRUE) {
    t.requires_grad_(true);
  }
  return H(t);
}

}  // namespace

LP_FN(jlong, torchFromBlob)(JNIEnv* env, jobject, jobject buffer, jlongArray shape, jint dtype,
                            jint layout, jintArray device, jboolean requiresGrad) {
  LP_TRY auto dims = lorapar::longs(env, shape);
  auto type = lorapar::toScalarType(dtype);
  void* data = buffer == nullptr ? nullptr : env->GetDirectBufferAddress(buffer);
  int64_t numel = 1;
  for (auto d : dims) numel *= d;
  if (data == nullptr && numel > 0) {
    throw std::invalid_argument("torchFromBlob needs a direct ByteBuffer");
  }
  auto cpu = torch::TensorOptions().dtype(type);
  torch::Tensor t;
  if (numel == 0) {
    t = torch::empty(dims, cpu);
  } else {
    jlong capacity = env->GetDirectBufferCapacity(buffer);
    int64_t need = numel * static_cast<int64_t>(c10::elementSize(type));
    if (capacity >= 0 && capacity < need) {
      throw std::invalid_argument("buffer too small for shape and data type");
    }
    // Always a copy: the result never aliases Java-owned memory. For an accelerator the blob is
    // copied straight to the device (synchronously: the buffer is only borrowed for this call).
    auto blob = torch::from_blob(data, dims, cpu);
    auto target = lorapar::toDevice(env, device);
    t = target.is_cpu() ? blob.clone()
                        : blob.to(target, blob.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  }
  auto dev = lorapar::toDevice(env, device);
  if (dev != t.device()) {
    t = t.to(dev);
  }
  auto lay = lorapar::toLayout(layout);
  if (lay == c10::Layout::Sparse) {
    t = t.to_sparse();
  } else if (lay == c10::Layout::Mkldnn) {
    t = t.to_mkldnn();
  }
  return finish(t, requiresGrad);
  LP_CATCH(env, 0)
}

LP_FN(void, torchSet)(JNIEnv* env, jobject, jlong h, jobject buffer) {
  LP_TRY auto& t = T(h);
  void* data = env->GetDirectBufferAddress(buffer);
  if (data == nullptr && t.numel() > 0) {
    throw std::invalid_argument("torchSet needs a direct ByteBuffer");
  }
  if (t.numel() == 0) {
    return;
  }
  auto src = torch::from_blob(data, t.sizes(), torch::TensorOptions().dtype(t.scalar_type()));
  torch::NoGradGuard guard;
  t.copy_(src);
  LP_CATCH(env, LP_VOID)
}

LP_FN(jlong, torchEmpty)(JNIEnv* env, jobject, jlongArray shape, jint dtype, jint layout,
                         jintArray device, jboolean rg) {
  LP_TRY return finish(torch::empty(lorapar::longs(env, shape), lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchZeros)(JNIEnv* env, jobject, jlongArray shape, jint dtype, jint layout,
                         jintArray device, jboolean rg) {
  LP_TRY return finish(torch::zeros(lorapar::longs(env, shape), lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchOnes)(JNIEnv* env, jobject, jlongArray shape, jint dtype, jint layout,
                        jintArray device, jboolean rg) {
  LP_TRY return finish(torch::ones(lorapar::longs(env, shape), lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchFull)(JNIEnv* env, jobject, jlongArray shape, jdouble value, jint dtype,
                        jint layout, jintArray device, jboolean rg) {
  LP_TRY return finish(torch::full(lorapar::longs(env, shape), value, lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchZerosLike)(JNIEnv* env, jobject, jlong h, jint dtype, jint layout,
                             jintArray device, jboolean rg) {
  LP_TRY return finish(torch::zeros_like(T(h), lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchOnesLike)(JNIEnv* env, jobject, jlong h, jint dtype, jint layout,
                            jintArray device, jboolean rg) {
  LP_TRY return finish(torch::ones_like(T(h), lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchArange)(JNIEnv* env, jobject, jfloat start, jfloat stop, jfloat step, jint dtype,
                          jint layout, jintArray device, jboolean rg) {
  LP_TRY auto opts = lorapar::options(env, dtype, layout, device);
  torch::Tensor t;
  if (c10::isIntegralType(opts.dtype().toScalarType(), /*includeBool=*/false)) {
    t = torch::arange(static_cast<int64_t>(start), static_cast<int64_t>(stop),
                      static_cast<int64_t>(step), opts);
  } else {
    t = torch::arange(static_cast<double>(start), static_cast<double>(stop),
                      static_cast<double>(step), opts);
  }
  return finish(t, rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchLinspace)(JNIEnv* env, jobject, jfloat start, jfloat stop, jint num, jint dtype,
                            jint layout, jintArray device, jboolean rg) {
  LP_TRY return finish(torch::linspace(static_cast<double>(start), static_cast<double>(stop),
                                       static_cast<int64_t>(num),
                                       lorapar::options(env, dtype, layout, device)),
                       rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchEye)(JNIEnv* env, jobject, jint n, jint m, jint dtype, jint layout,
                       jintArray device, jboolean rg) {
  LP_TRY return finish(torch::eye(static_cast<int64_t>(n), static_cast<int64_t>(m),
                                  lorapar::options(env, dtype, layout, device)),
                       rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchSparseCoo)(JNIEnv* env, jobject, jlongArray shape, jlong indices, jlong values,
                             jboolean rg) {
  LP_TRY auto t = torch::sparse_coo_tensor(T(indices), T(values), lorapar::longs(env, shape));
  return finish(t, rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchHannWindow)(JNIEnv* env, jobject, jlong n, jboolean periodic, jintArray device) {
  LP_TRY return H(torch::hann_window(n, periodic == JNI_TRUE,
                                     torch::TensorOptions().device(lorapar::toDevice(env, device))));
  LP_CATCH(env, 0)
}

// ---- random ----

LP_FN(jlong, torchRandint)(JNIEnv* env, jobject, jlong low, jlong high, jlongArray shape,
                           jint dtype, jint layout, jintArray device, jboolean rg) {
  LP_TRY return finish(torch::randint(low, high, lorapar::longs(env, shape),
                                      lorapar::options(env, dtype, layout, device)),
                       rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchRandPerm)(JNIEnv* env, jobject, jlong n, jint dtype, jint layout,
                            jintArray device, jboolean rg) {
  LP_TRY return finish(torch::randperm(n, lorapar::options(env, dtype, layout, device)), rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNormal)(JNIEnv* env, jobject, jdouble mean, jdouble std, jlongArray shape,
                          jint dtype, jint layout, jintArray device, jboolean rg) {
  LP_TRY auto t = torch::empty(lorapar::longs(env, shape), lorapar::options(env, dtype, layout, device));
  t.normal_(mean, std);
  return finish(t, rg);
  LP_CATCH(env, 0)
}

LP_FN(jlong, tensorUniform)(JNIEnv* env, jobject, jdouble low, jdouble high, jlongArray shape,
                            jint dtype, jint layout, jintArray device, jboolean rg) {
  LP_TRY auto t = torch::empty(lorapar::longs(env, shape), lorapar::options(env, dtype, layout, device));
  t.uniform_(low, high);
  return finish(t, rg);
  LP_CATCH(env, 0)
}

// ---- metadata ----

LP_FN(jlongArray, torchSizes)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return lorapar::toJLongs(env, T(h).sizes());
  LP_CATCH(env, nullptr)
}

LP_FN(jint, torchDType)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return lorapar::fromScalarType(T(h).scalar_type());
  LP_CATCH(env, 9)
}

LP_FN(jintArray, torchDevice)(JNIEnv* env, jobject, jlong h) {
  LP_TRY auto d = T(h).device();
  jint v[2] = {static_cast<jint>(d.type()), d.is_cpu() ? -1 : static_cast<jint>(d.index())};
  jintArray arr = env->NewIntArray(2);
  env->SetIntArrayRegion(arr, 0, 2, v);
  return arr;
  LP_CATCH(env, nullptr)
}

LP_FN(jint, torchLayout)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return lorapar::fromLayout(T(h).layout());
  LP_CATCH(env, 0)
}

LP_FN(jboolean, torchIsContiguous)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return T(h).is_contiguous() ? JNI_TRUE : JNI_FALSE;
  LP_CATCH(env, JNI_FALSE)
}

LP_FN(jlong, torchToContiguous)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return H(T(h).contiguous());
  LP_CATCH(env, 0)
}

LP_FN(jlong, tensorClone)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return H(T(h).clone());
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchTo)(JNIEnv* env, jobject, jlong h, jint dtype, jintArray device) {
  LP_TRY auto& t = T(h);
  return H(t.to(lorapar::toDevice(env, device), lorapar::toScalarType(dtype), /*non_blocking=*/false,
                /*copy=*/false));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchToSparse)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return H(T(h).to_sparse());
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchToDense)(JNIEnv* env, jobject, jlong h) {
  LP_TRY return H(T(h).to_dense());
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchGetItem__JJ)(JNIEnv* env, jobject, jlong h, jlong index) {
  LP_TRY return H(T(h).select(0, index));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchGetItem__J_3J)(JNIEnv* env, jobject, jlong h, jlongArray indices) {
  LP_TRY torch::Tensor t = T(h);
  for (int64_t i : lorapar::longs(env, indices)) {
    t = t.select(0, i);
  }
  return H(t);
  LP_CATCH(env, 0)
}

// Copies a CPU tensor's bytes into a new Java byte[] (DJL moved it to the CPU already).
LP_FN(jbyteArray, torchDataPtr)(JNIEnv* env, jobject, jlong h) {
  LP_TRY auto t = T(h);
  if (!t.device().is_cpu()) {
    t = t.cpu();
  }
  if (t.layout() != c10::Layout::Strided) {
    t = t.to_dense();
  }
  t = t.contiguous();
  auto nbytes = static_cast<jsize>(t.nbytes());
  jbyteArray arr = env->NewByteArray(nbytes);
  if (arr != nullptr && nbytes > 0) {
    env->SetByteArrayRegion(arr, 0, nbytes, static_cast<const jbyte*>(t.const_data_ptr()));
  }
  return arr;
  LP_CATCH(env, nullptr)
}

// A direct ByteBuffer over a contiguous CPU tensor's memory (DJL keeps that tensor alive).
LP_FN(jobject, torchDirectByteBuffer)(JNIEnv* env, jobject, jlong h) {
  LP_TRY auto& t = T(h);
  if (!t.device().is_cpu() || !t.is_contiguous() || t.layout() != c10::Layout::Strided) {
    throw std::invalid_argument("torchDirectByteBuffer needs a contiguous dense CPU tensor");
  }
  static char empty[16];
  void* ptr = t.nbytes() == 0 ? static_cast<void*>(empty) : t.data_ptr();
  return env->NewDirectByteBuffer(ptr, static_cast<jlong>(t.nbytes()));
  LP_CATCH(env, nullptr)
}

LP_FN(jboolean, contentEqual)(JNIEnv* env, jobject, jlong a, jlong b) {
  LP_TRY auto& x = T(a);
  auto& y = T(b);
  if (x.scalar_type() != y.scalar_type() || x.sizes() != y.sizes()) {
    return JNI_FALSE;
  }
  return x.equal(y.device() == x.device() ? y : y.to(x.device())) ? JNI_TRUE : JNI_FALSE;
  LP_CATCH(env, JNI_FALSE)
}
