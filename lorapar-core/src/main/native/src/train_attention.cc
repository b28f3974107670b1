// LoRA-PAR JNI: the attention block of a training (or any cache-free) forward pass in one call,
// native of the Java class ai.lorapar.engine.TrainingOps.
//
// RoPE of q and k with the q/k/v head split (one autograd node, RopeSplitFn), then torch's fused
// scaled_dot_product_attention under autograd. With is_causal and no mask, torch
// picks flash attention: no [B, H, T, T] matrix is made or kept for backward. Grouped-query heads use
// SDPA's enable_gqa there; with a mask they are expanded instead (the memory-efficient kernel, which
// takes masks, does not take enable_gqa).
//
// Optional by design: this file registers "LORAPAR_TRAIN_ATTENTION"; without it Java uses NDArray ops.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#define LP_TRAIN_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_TrainingOps_##name

namespace {

const lorapar::FeatureRegistration kTrainAttentionFeature("LORAPAR_TRAIN_ATTENTION");

// out = x·cos + swap_halves(x)·sinSigned over the last dim (transformers' rotate-half RoPE with the
// sin's first half negated), with transformers' roundings: each product rounded to x's dtype, then
// the sum. `out` and `tmp` have x's shape.
void rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, torch::Tensor& out,
          torch::Tensor& tmp) {
  const int64_t half = x.size(-1) / 2;
  at::mul_out(out, x, cos);
  torch::Tensor t1 = tmp.narrow(-1, 0, half);
  torch::Tensor t2 = tmp.narrow(-1, half, half);
  at::mul_out(t1, x.narrow(-1, half, half), sin.narrow(-1, 0, half));
  at::mul_out(t2, x.narrow(-1, 0, half), sin.narrow(-1, half, half));
  out.add_(tmp);
}

// RoPE of the q and k heads of one q/k/v projection output and the split into q, k, v as one autograd
// node: q [B, T, H, D] and k [B, T, KV, D] roped, v [B, T, KV, D], each contiguous. As composed torch
// ops, the split (narrow) and rotate-half (cat) make backward fill zero [B, T, H + 2·KV, D] tensors and
// add them up, several per layer; this node writes the gradient of q/k/v into one tensor, part by
// part, and keeps only cos and sin for backward.
struct RopeSplitFn : public torch::autograd::Function<RopeSplitFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& qkv, const torch::Tensor& cos,
                               const torch::Tensor& sin, int64_t nh, int64_t nkv) {
    torch::Tensor qIn = qkv.narrow(2, 0, nh);
    torch::Tensor kIn = qkv.narrow(2, nh, nkv);
    torch::Tensor q = at::empty(qIn.sizes(), qkv.options());
    torch::Tensor k = at::empty(kIn.sizes(), qkv.options());
    torch::Tensor tmp = at::empty(qIn.sizes(), qkv.options());
    rope(qIn, cos, sin, q, tmp);
    torch::Tensor tmpK = tmp.narrow(2, 0, nkv);
    rope(kIn, cos, sin, k, tmpK);
    torch::Tensor v = qkv.narrow(2, nh + nkv, nkv).contiguous();
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["nh"] = nh;
    ctx->saved_data["nkv"] = nkv;
    return {q, k, v};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& cos = saved[0];
    const torch::Tensor& sin = saved[1];
    const int64_t nh = ctx->saved_data["nh"].toInt();
    const int64_t nkv = ctx->saved_data["nkv"].toInt();
    variable_list out(5);
    if (!ctx->needs_input_grad(0)) {
      return out;
    }
    const torch::Tensor& anyGrad = grads[0].defined() ? grads[0] : grads[1].defined() ? grads[1] : grads[2];
    std::vector<int64_t> sizes = anyGrad.sizes().vec();
    sizes[2] = nh + 2 * nkv;
    torch::Tensor dqkv = at::empty(sizes, anyGrad.options());
    // y = x·cos + S(x)·sin with S(x) = [x₂, x₁]: dx = g·cos + S(g·sin) (S is its own transpose)
    const int64_t offsets[3] = {0, nh, nh + nkv};
    const int64_t widths[3] = {nh, nkv, nkv};
    torch::Tensor tmp;
    for (int i = 0; i < 3; i++) {
      torch::Tensor part = dqkv.narrow(2, offsets[i], widths[i]);
      if (!grads[i].defined()) {
        part.zero_();
        continue;
      }
      if (i == 2) {
        part.copy_(grads[i]);
        continue;
      }
      const torch::Tensor& g = grads[i];
      const int64_t half = g.size(-1) / 2;
      if (!tmp.defined()) {
        tmp = at::empty(g.sizes(), g.options());
      }
      torch::Tensor t = tmp.narrow(2, 0, widths[i]);
      at::mul_out(part, g, cos);
      torch::Tensor t1 = t.narrow(-1, 0, half);
      torch::Tensor t2 = t.narrow(-1, half, half);
      at::mul_out(t1, g.narrow(-1, half, half), sin.narrow(-1, half, half));
      at::mul_out(t2, g.narrow(-1, 0, half), sin.narrow(-1, 0, half));
      part.add_(t);
    }
    out[0] = dqkv;
    return out;
  }
};

}  // namespace

// qkv [B, T, H + 2·KV, D] (q heads, k heads, v heads), cos/sinSigned [B, T, 1, D] (the sin's first half
// negated: x·cos + swap_halves(x)·sinSigned is transformers' rotate-half RoPE), keep 0 or a bool mask
// broadcasting to [B, H, T, T] (true = may attend), causal: add torch's causal mask, scale <= 0: 1/sqrt(D).
// Returns the attention output [B, T, H·D].
LP_TRAIN_FN(jlong, attentionNative)(JNIEnv* env, jclass, jlong qkvH, jlong cosH, jlong sinH, jlong keepH,
                                    jint heads, jint kvHeads, jboolean causal, jdouble scale) {
  LP_TRY RECORD_FUNCTION("lorapar::attention", std::vector<c10::IValue>());
  const auto& qkv = T(qkvH);
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
  variable_list qkvParts = RopeSplitFn::apply(qkv, T(cosH), T(sinH), nh, nkv);
  torch::Tensor q = qkvParts[0].transpose(1, 2);  // [B, H, T, D]
  torch::Tensor k = qkvParts[1].transpose(1, 2);  // [B, KV, T, D]
  torch::Tensor v = qkvParts[2].transpose(1, 2);
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
  LP_TRY RECORD_FUNCTION("lorapar::sdpa", std::vector<c10::IValue>());
  std::optional<torch::Tensor> mask;
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
