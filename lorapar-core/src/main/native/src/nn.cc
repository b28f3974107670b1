// LoRA-PAR JNI: neural-network functionals (linear, embedding, norms, activations, dropout,
// convolution, pooling) and FFT helpers.
#include <torch/fft.h>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

LP_FN(jlong, torchNNLinear)(JNIEnv* env, jobject, jlong input, jlong weight, jlong bias) {
  LP_TRY return H(torch::linear(T(input), T(weight), lorapar::optT(bias)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNEmbedding)(JNIEnv* env, jobject, jlong input, jlong weight, jboolean sparse) {
  LP_TRY return H(torch::embedding(T(weight), T(input), -1, false, sparse == JNI_TRUE));
  LP_CATCH(env, 0)
}

LP_UNARY(torchNNRelu, torch::relu(t))
LP_UNARY(torchNNSoftPlus, torch::softplus(t))
LP_UNARY(torchNNSoftSign, t.div(t.abs().add(1)))
LP_UNARY(torchNNSelu, torch::selu(t))
LP_UNARY(torchNNGelu, torch::gelu(t))

LP_FN(jlong, torchNNLeakyRelu)(JNIEnv* env, jobject, jlong h, jdouble slope) {
  LP_TRY return H(torch::leaky_relu(T(h), slope));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNElu)(JNIEnv* env, jobject, jlong h, jdouble alpha) {
  LP_TRY return H(torch::elu(T(h), alpha));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNDropout)(JNIEnv* env, jobject, jlong h, jdouble p, jboolean training) {
  LP_TRY return H(torch::dropout(T(h), p, training == JNI_TRUE));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNNormalize)(JNIEnv* env, jobject, jlong h, jdouble p, jlong dim, jdouble eps) {
  LP_TRY auto& t = T(h);
  std::vector<int64_t> dims{dim};
  auto n = torch::linalg_vector_norm(t, c10::Scalar(p), at::IntArrayRef(dims), true);
  return H(t.div(n.clamp_min(eps).expand_as(t)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNLayerNorm)(JNIEnv* env, jobject, jlong h, jlongArray shape, jlong weight,
                               jlong bias, jdouble eps) {
  LP_TRY auto s = lorapar::longs(env, shape);
  return H(torch::layer_norm(T(h), at::IntArrayRef(s), lorapar::optT(weight), lorapar::optT(bias),
                             eps, true));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNBatchNorm)(JNIEnv* env, jobject, jlong h, jlong gamma, jlong beta,
                               jlong runningMean, jlong runningVar, jboolean training,
                               jdouble momentum, jdouble eps) {
  LP_TRY return H(torch::batch_norm(T(h), lorapar::optT(gamma), lorapar::optT(beta),
                                    lorapar::optT(runningMean), lorapar::optT(runningVar),
                                    training == JNI_TRUE, momentum, eps, true));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNConvNd)(JNIEnv* env, jobject, jlong input, jlong weight, jlong bias,
                            jlongArray stride, jlongArray padding, jlongArray dilation,
                            jint groups) {
  LP_TRY auto s = lorapar::longs(env, stride);
  auto p = lorapar::longs(env, padding);
  auto d = lorapar::longs(env, dilation);
  std::vector<int64_t> outPad(s.size(), 0);
  return H(torch::convolution(T(input), T(weight), lorapar::optT(bias), at::IntArrayRef(s),
                              at::IntArrayRef(p), at::IntArrayRef(d), false,
                              at::IntArrayRef(outPad), groups));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNAvgPool)(JNIEnv* env, jobject, jlong h, jlongArray kernel, jlongArray stride,
                             jlongArray padding, jboolean ceil, jboolean countIncludePad) {
  LP_TRY auto& t = T(h);
  auto k = lorapar::longs(env, kernel);
  auto s = lorapar::longs(env, stride);
  auto p = lorapar::longs(env, padding);
  bool c = ceil == JNI_TRUE;
  bool cip = countIncludePad == JNI_TRUE;
  switch (k.size()) {
    case 1: return H(torch::avg_pool1d(t, k, s, p, c, cip));
    case 2: return H(torch::avg_pool2d(t, k, s, p, c, cip));
    case 3: return H(torch::avg_pool3d(t, k, s, p, c, cip));
    default: throw std::invalid_argument("avg pool supports 1 to 3 spatial dimensions");
  }
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNMaxPool)(JNIEnv* env, jobject, jlong h, jlongArray kernel, jlongArray stride,
                             jlongArray padding, jboolean ceil) {
  LP_TRY auto& t = T(h);
  auto k = lorapar::longs(env, kernel);
  auto s = lorapar::longs(env, stride);
  auto p = lorapar::longs(env, padding);
  std::vector<int64_t> dil(k.size(), 1);
  bool c = ceil == JNI_TRUE;
  switch (k.size()) {
    case 1: return H(torch::max_pool1d(t, k, s, p, dil, c));
    case 2: return H(torch::max_pool2d(t, k, s, p, dil, c));
    case 3: return H(torch::max_pool3d(t, k, s, p, dil, c));
    default: throw std::invalid_argument("max pool supports 1 to 3 spatial dimensions");
  }
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNAdaptiveAvgPool)(JNIEnv* env, jobject, jlong h, jlongArray outSize) {
  LP_TRY auto& t = T(h);
  auto o = lorapar::longs(env, outSize);
  switch (o.size()) {
    case 1: return H(torch::adaptive_avg_pool1d(t, o));
    case 2: return H(torch::adaptive_avg_pool2d(t, o));
    case 3: return H(torch::adaptive_avg_pool3d(t, o));
    default: throw std::invalid_argument("adaptive avg pool supports 1 to 3 spatial dimensions");
  }
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchNNAdaptiveMaxPool)(JNIEnv* env, jobject, jlong h, jlongArray outSize) {
  LP_TRY auto& t = T(h);
  auto o = lorapar::longs(env, outSize);
  switch (o.size()) {
    case 1: return H(std::get<0>(torch::adaptive_max_pool1d(t, o)));
    case 2: return H(std::get<0>(torch::adaptive_max_pool2d(t, o)));
    case 3: return H(std::get<0>(torch::adaptive_max_pool3d(t, o)));
    default: throw std::invalid_argument("adaptive max pool supports 1 to 3 spatial dimensions");
  }
  LP_CATCH(env, 0)
}

// ---- FFT and complex views ----

LP_FN(jlong, torchFft)(JNIEnv* env, jobject, jlong h, jlong n, jlong dim) {
  LP_TRY return H(torch::fft::fft(T(h), n, dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchIfft)(JNIEnv* env, jobject, jlong h, jlong n, jlong dim) {
  LP_TRY return H(torch::fft::ifft(T(h), n, dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchRfft)(JNIEnv* env, jobject, jlong h, jlong n, jlong dim) {
  LP_TRY return H(torch::fft::rfft(T(h), n, dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchIrfft)(JNIEnv* env, jobject, jlong h, jlong n, jlong dim) {
  LP_TRY return H(torch::fft::irfft(T(h), n, dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchViewAsReal)(JNIEnv* env, jobject, jlong h) {
  LP_TRY auto& t = T(h);
  if (!t.is_complex()) {
    return -1;
  }
  return H(torch::view_as_real(t));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchViewAsComplex)(JNIEnv* env, jobject, jlong h) {
  LP_TRY auto& t = T(h);
  if (t.is_complex()) {
    return -1;
  }
  return H(torch::view_as_complex(t));
  LP_CATCH(env, 0)
}

LP_UNARY(conj, t.conj())
