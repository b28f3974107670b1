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

namespace {

const lorapar::FeatureRegistration kFusedImportanceFeature("LORAPAR_FUSED_IMPORTANCE");

}  // namespace

// One batch of LoRA-PAR importance sums: for every parameter φ_i with per-example gradients g_i
// [R, ...φ_i's shape], s1_i += Σ_b g_b·φ and s2_i += Σ_b (g_b·φ)² (fp32). As NDArray ops that is six
// small kernels and JNI calls per tensor (thousands per batch for a 7B model's LoRA, the GPU waiting on
// the host); here all tensors go flat into one [R, Σ numel] product, two reductions and two multi-tensor
// additions. Same arithmetic (fp32 product, square, sum over the examples).
LP_FUSED_FN(void, accumulateImportanceNative)(JNIEnv* env, jclass, jlongArray paramHandles, jlongArray gradHandles,
                                              jlongArray s1Handles, jlongArray s2Handles) {
  LP_TRY torch::NoGradGuard noGrad;
  std::vector<int64_t> ph = lorapar::longs(env, paramHandles);
  std::vector<int64_t> gh = lorapar::longs(env, gradHandles);
  std::vector<int64_t> s1h = lorapar::longs(env, s1Handles);
  std::vector<int64_t> s2h = lorapar::longs(env, s2Handles);
  const size_t n = ph.size();
  if (n == 0 || gh.size() != n || s1h.size() != n || s2h.size() != n) {
    throw std::invalid_argument("accumulateImportance: parameters, gradients and sums differ in number");
  }
  const int64_t rows = T(gh[0]).size(0);
  std::vector<torch::Tensor> gFlat;
  std::vector<torch::Tensor> pFlat;
  std::vector<torch::Tensor> s1;
  std::vector<torch::Tensor> s2;
  std::vector<int64_t> numels;
  for (size_t i = 0; i < n; i++) {
    const torch::Tensor& p = T(ph[i]);
    const torch::Tensor& g = T(gh[i]);
    if (g.dim() != p.dim() + 1 || g.size(0) != rows || g.numel() != rows * p.numel()) {
      throw std::invalid_argument("accumulateImportance: gradient " + std::to_string(i) + " " + c10::str(g.sizes()) +
                                  " is not [" + std::to_string(rows) + ", " + c10::str(p.sizes()) + "]");
    }
    gFlat.push_back(g.reshape({rows, -1}).to(c10::ScalarType::Float));
    pFlat.push_back(p.reshape({-1}).to(c10::ScalarType::Float));
    s1.push_back(T(s1h[i]));
    s2.push_back(T(s2h[i]));
    numels.push_back(p.numel());
  }
  torch::Tensor gphi = at::cat(gFlat, 1);  // [R, total], a copy of its own
  gphi.mul_(at::cat(pFlat).unsqueeze(0));
  torch::Tensor d1 = gphi.sum(0);
  torch::Tensor d2 = gphi.square_().sum(0);
  std::vector<torch::Tensor> d1s = d1.split_with_sizes(numels);
  std::vector<torch::Tensor> d2s = d2.split_with_sizes(numels);
  for (size_t i = 0; i < n; i++) {
    d1s[i] = d1s[i].view(s1[i].sizes());
    d2s[i] = d2s[i].view(s2[i].sizes());
  }
  at::_foreach_add_(s1, d1s);
  at::_foreach_add_(s2, d2s);
  LP_CATCH(env, LP_VOID)
}
