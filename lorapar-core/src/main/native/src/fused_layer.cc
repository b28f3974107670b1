// LoRA-PAR JNI: one whole decoder layer for a decode step in one JNI call (natives of the Java class
// ai.lorapar.engine.FusedOps). Apart from fused.cc on purpose: it registers its own capability
// "LORAPAR_FUSED_LAYER", so if this file fails to compile only this call is lost (Java then runs the
// layer op by op).
//
// The maths is the Java layer's (DecoderModel.layer) with the fused ops of fused.cc: RMSNorm in fp32,
// fused q/k/v product, rotate-half RoPE with the sign folded into sin, in-place KV-cache write,
// grouped-query attention of the one new token by scaled_dot_product_attention, o_proj + residual,
// RMSNorm, fused gate/up product, silu(gate) * up, down_proj + residual.
#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

namespace {

const lorapar::FeatureRegistration kFusedLayerFeature("LORAPAR_FUSED_LAYER");

torch::Tensor rmsNormOf(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  torch::Tensor xf = x.scalar_type() == c10::ScalarType::Float ? x : x.to(c10::ScalarType::Float);
  std::vector<int64_t> last{-1};
  torch::Tensor variance = xf.square().mean(at::IntArrayRef(last), true);
  torch::Tensor normed = xf.div(variance.add(eps).sqrt());
  if (normed.scalar_type() != x.scalar_type()) {
    normed = normed.to(x.scalar_type());
  }
  return normed.mul(w);
}

}  // namespace

// x: [B, 1, hidden]. handles (0 for an absent bias or mask), in this order:
//   0 inputNorm, 1 qkvW [(H+2KV)*D, hidden], 2 qkvB, 3 oW, 4 oB, 5 postNorm, 6 guW [2F, hidden], 7 guB,
//   8 downW, 9 downB, 10 keyCache [B, KV, cap, D], 11 valueCache, 12 cos [B, 1, 1, D],
//   13 sinSigned [B, 1, 1, D], 14 keepMask (broadcasting to [B, KV, H/KV, past+1]; bool or 0/1)
// Writes the new key/value at position `past` and returns the layer output [B, 1, hidden].
extern "C" JNIEXPORT jlong JNICALL Java_ai_lorapar_engine_FusedOps_decodeLayerNative(
    JNIEnv* env, jclass, jlong xh, jlongArray handles, jlong past, jint heads, jint kvHeads, jdouble eps,
    jdouble scale) {
  LP_TRY std::vector<int64_t> hs = lorapar::longs(env, handles);
  if (hs.size() != 15) {
    throw std::invalid_argument("decodeLayer needs 15 handles");
  }
  const torch::Tensor& x = T(xh);
  const torch::Tensor& inNorm = T(hs[0]);
  const torch::Tensor& qkvW = T(hs[1]);
  std::optional<torch::Tensor> qkvB = lorapar::optT(hs[2]);
  const torch::Tensor& oW = T(hs[3]);
  std::optional<torch::Tensor> oB = lorapar::optT(hs[4]);
  const torch::Tensor& postNorm = T(hs[5]);
  const torch::Tensor& guW = T(hs[6]);
  std::optional<torch::Tensor> guB = lorapar::optT(hs[7]);
  const torch::Tensor& downW = T(hs[8]);
  std::optional<torch::Tensor> downB = lorapar::optT(hs[9]);
  torch::Tensor& keyCache = T(hs[10]);
  torch::Tensor& valueCache = T(hs[11]);
  const torch::Tensor& cos = T(hs[12]);
  const torch::Tensor& sin = T(hs[13]);
  std::optional<torch::Tensor> keep = lorapar::optT(hs[14]);

  const int64_t b = x.size(0);
  const int64_t t = x.size(1);
  if (t != 1) {
    throw std::invalid_argument("decodeLayer takes one token per row");
  }
  const int64_t nh = heads;
  const int64_t nkv = kvHeads;
  const int64_t d = keyCache.size(3);
  const int64_t half = d / 2;

  torch::Tensor hn = rmsNormOf(x, inNorm, eps);
  torch::Tensor qkv = torch::linear(hn, qkvW, qkvB).reshape({b, t, nh + 2 * nkv, d});
  torch::Tensor qk = qkv.narrow(2, 0, nh + nkv);
  torch::Tensor swapped = torch::cat({qk.narrow(-1, half, half), qk.narrow(-1, 0, half)}, -1);
  torch::Tensor roped = qk.mul(cos).add(swapped.mul(sin));  // [B, 1, H+KV, D]
  torch::Tensor k = roped.narrow(2, nh, nkv).transpose(1, 2);  // [B, KV, 1, D]
  torch::Tensor v = qkv.narrow(2, nh + nkv, nkv).transpose(1, 2);
  keyCache.narrow(2, past, t).copy_(k);
  valueCache.narrow(2, past, t).copy_(v);
  torch::Tensor keys = keyCache.narrow(2, 0, past + t);
  torch::Tensor values = valueCache.narrow(2, 0, past + t);
  // one token: the query heads of a group are the rows of one attention over the group's keys
  torch::Tensor qg = roped.narrow(2, 0, nh).reshape({b, nkv, nh / nkv, d});
  std::optional<torch::Tensor> mask;
  if (keep.has_value()) {
    mask = keep->scalar_type() == c10::ScalarType::Bool ? *keep : keep->ne(0);
  }
  std::optional<double> s;
  if (scale > 0) {
    s = static_cast<double>(scale);
  }
  torch::Tensor ctx =
      at::scaled_dot_product_attention(qg, keys, values, mask, 0.0, false, s).reshape({b, t, nh * d});
  torch::Tensor h = x.add(torch::linear(ctx, oW, oB));
  torch::Tensor hn2 = rmsNormOf(h, postNorm, eps);
  torch::Tensor gu = torch::linear(hn2, guW, guB);
  const int64_t f = gu.size(-1) / 2;
  torch::Tensor act = torch::silu(gu.narrow(-1, 0, f)).mul(gu.narrow(-1, f, f));
  return H(h.add(torch::linear(act, downW, downB)));
  LP_CATCH(env, 0)
}
