// LoRA-PAR JNI: the attention block of a training (or any cache-free) forward pass in one call,
// native of the Java class ai.lorapar.engine.TrainingOps.
//
// RoPE of q and k, the q/k/v head split and torch's fused scaled_dot_product_attention, composed of
// differentiable torch ops, so autograd records them as usual. With is_causal and no mask, torch
// picks flash attention: no [B, H, T, T] matrix is made or kept for backward. Grouped-query heads use
// SDPA's enable_gqa there; with a mask they are expanded instead (the memory-efficient kernel, which
// takes masks, does not take enable_gqa).
//
// Optional by design: this file registers "LORAPAR_TRAIN_ATTENTION"; without it Java uses NDArray ops.
#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

#define LP_TRAIN_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_TrainingOps_##name

namespace {

const lorapar::FeatureRegistration kTrainAttentionFeature("LORAPAR_TRAIN_ATTENTION");

}  // namespace

// qkv [B, T, H + 2·KV, D] (q heads, k heads, v heads), cos/sinSigned [B, T, 1, D] (the sin's first half
// negated: x·cos + swap_halves(x)·sinSigned is transformers' rotate-half RoPE), keep 0 or a bool mask
// broadcasting to [B, H, T, T] (true = may attend), causal: add torch's causal mask, scale <= 0: 1/sqrt(D).
// Returns the attention output [B, T, H·D].
LP_TRAIN_FN(jlong, attentionNative)(JNIEnv* env, jclass, jlong qkvH, jlong cosH, jlong sinH, jlong keepH,
                                    jint heads, jint kvHeads, jboolean causal, jdouble scale) {
  LP_TRY const auto& qkv = T(qkvH);
  if (qkv.dim() != 4) {
    throw std::invalid_argument("attention: qkv must be [B, T, heads + 2 kvHeads, D]");
  }
  const int64_t b = qkv.size(0);
  const int64_t t = qkv.size(1);
  const int64_t d = qkv.size(3);
  const int64_t nh = heads;
  const int64_t nkv = kvHeads;
  if (nkv <= 0 || nh % nkv != 0 || qkv.size(2) != nh + 2 * nkv) {
    throw std::invalid_argument("attention: qkv has " + std::to_string(qkv.size(2)) + " heads, expected " +
                                std::to_string(nh) + " + 2 x " + std::to_string(nkv));
  }
  const int64_t half = d / 2;
  torch::Tensor qk = qkv.narrow(2, 0, nh + nkv);
  torch::Tensor swapped = torch::cat({qk.narrow(-1, half, half), qk.narrow(-1, 0, half)}, -1);
  torch::Tensor roped = qk.mul(T(cosH)).add(swapped.mul(T(sinH)));  // [B, T, H + KV, D]
  torch::Tensor q = roped.narrow(2, 0, nh).transpose(1, 2);        // [B, H, T, D]
  torch::Tensor k = roped.narrow(2, nh, nkv).transpose(1, 2);      // [B, KV, T, D]
  // a copy of v, so that autograd keeps it rather than the whole q/k/v projection output
  torch::Tensor v = qkv.narrow(2, nh + nkv, nkv).transpose(1, 2).contiguous();
  std::optional<torch::Tensor> mask;
  bool gqa = nh != nkv;
  if (keepH != 0) {
    const auto& m = T(keepH);
    mask = m.scalar_type() == c10::ScalarType::Bool ? m : m.ne(0);
    if (gqa) {
      k = k.repeat_interleave(nh / nkv, 1);
      v = v.repeat_interleave(nh / nkv, 1);
      gqa = false;
    }
  }
  std::optional<double> s;
  if (scale > 0) {
    s = static_cast<double>(scale);
  }
  torch::Tensor out = at::scaled_dot_product_attention(q, k, v, mask, 0.0, causal == JNI_TRUE, s, gqa);
  return H(out.transpose(1, 2).reshape({b, t, nh * d}));
  LP_CATCH(env, 0)
}

// scaled_dot_product_attention with enable_gqa (q [B, H, Tq, D], k/v [B, KV, S, D]); mask as above.
LP_TRAIN_FN(jlong, sdpaNative)(JNIEnv* env, jclass, jlong qh, jlong kh, jlong vh, jlong maskH, jboolean causal,
                               jdouble scale, jboolean enableGqa) {
  LP_TRY std::optional<torch::Tensor> mask;
  if (maskH != 0) {
    const auto& m = T(maskH);
    mask = m.scalar_type() == c10::ScalarType::Bool ? m : m.ne(0);
  }
  std::optional<double> s;
  if (scale > 0) {
    s = static_cast<double>(scale);
  }
  return H(at::scaled_dot_product_attention(T(qh), T(kh), T(vh), mask, 0.0, causal == JNI_TRUE, s,
                                            enableGqa == JNI_TRUE));
  LP_CATCH(env, 0)
}
