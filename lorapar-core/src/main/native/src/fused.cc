// LoRA-PAR JNI: fused ops for decoding, natives of the Java class ai.lorapar.engine.FusedOps.
// Each replaces several DJL NDArray ops (each one a JNI call) with one call; the tensor maths is the
// same composite of torch ops the Java fallback uses, except siluMul (torch::silu) and
// scaledDotProductAttention (at::scaled_dot_product_attention).
//
// Optional by design: this file registers the capability "LORAPAR_FUSED", and Java calls these
// natives only when the engine advertises it. If this file does not compile, the library is built
// without it (.ci/gpu/run) and Java keeps its NDArray fallback.
#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

#define LP_FUSED_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_FusedOps_##name

namespace {

const lorapar::FeatureRegistration kFusedFeature("LORAPAR_FUSED");

}  // namespace

// RMSNorm as transformers computes it: in fp32, x / sqrt(mean(x^2) + eps), cast back to x's dtype,
// times weight.
LP_FUSED_FN(jlong, rmsNormNative)(JNIEnv* env, jclass, jlong xh, jlong wh, jdouble eps) {
  LP_TRY const auto& x = T(xh);
  const auto& w = T(wh);
  torch::Tensor xf = x.scalar_type() == c10::ScalarType::Float ? x : x.to(c10::ScalarType::Float);
  std::vector<int64_t> last{-1};
  torch::Tensor variance = xf.square().mean(at::IntArrayRef(last), true);
  torch::Tensor normed = xf.div(variance.add(eps).sqrt());
  if (normed.scalar_type() != x.scalar_type()) {
    normed = normed.to(x.scalar_type());
  }
  return H(normed.mul(w));
  LP_CATCH(env, 0)
}

// silu(gate) * up for gateUp = [..., 2F] holding gate in its first half and up in its second.
LP_FUSED_FN(jlong, siluMulNative)(JNIEnv* env, jclass, jlong h) {
  LP_TRY const auto& gu = T(h);
  int64_t f = gu.size(-1) / 2;
  torch::Tensor gate = gu.narrow(-1, 0, f);
  torch::Tensor up = gu.narrow(-1, f, f);
  return H(torch::silu(gate).mul(up));
  LP_CATCH(env, 0)
}

// Rotary embedding with rotate-half's sign folded into sinSigned (its first half negated):
// x * cos + swap_halves(x) * sinSigned.
LP_FUSED_FN(jlong, ropeNative)(JNIEnv* env, jclass, jlong xh, jlong ch, jlong sh) {
  LP_TRY const auto& x = T(xh);
  int64_t half = x.size(-1) / 2;
  torch::Tensor swapped = torch::cat({x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return H(x.mul(T(ch)).add(swapped.mul(T(sh))));
  LP_CATCH(env, 0)
}

// Attention of q [B, N, Tq, D] over k, v [B, N, S, D]; mask (0 for none) broadcasts to
// [B, N, Tq, S] and is a keep-mask: bool, or numbers where nonzero means "may attend".
// scale <= 0 means 1/sqrt(D).
LP_FUSED_FN(jlong, sdpaNative)(JNIEnv* env, jclass, jlong qh, jlong kh, jlong vh, jlong maskH,
                               jboolean causal, jdouble scale) {
  LP_TRY std::optional<torch::Tensor> mask;
  if (maskH != 0) {
    const auto& m = T(maskH);
    mask = m.scalar_type() == c10::ScalarType::Bool ? m : m.ne(0);
  }
  std::optional<double> s;
  if (scale > 0) {
    s = static_cast<double>(scale);
  }
  return H(at::scaled_dot_product_attention(T(qh), T(kh), T(vh), mask, 0.0, causal == JNI_TRUE, s));
  LP_CATCH(env, 0)
}

// dst.narrow(dim, start, src.size(dim)).copy_(src): writes src into a slice of dst in place.
LP_FUSED_FN(void, writeSliceNative)(JNIEnv* env, jclass, jlong dh, jlong sh, jlong dim, jlong start) {
  LP_TRY auto& dst = T(dh);
  const auto& src = T(sh);
  dst.narrow(dim, start, src.size(dim)).copy_(src);
  LP_CATCH(env, LP_VOID)
}
