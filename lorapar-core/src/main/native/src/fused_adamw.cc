// LoRA-PAR JNI: one masked AdamW step over all parameters in one call (natives of the Java class
// ai.lorapar.engine.FusedAdamW).
//
// MaskedAdamW through DJL issues ~22 NDArray ops per parameter tensor, several of which copy a scalar
// from the host (a device sync each), and reads the gradient norm back: for LoRA QKVGUD on a 24-layer
// model (288 tensors) that is thousands of JNI calls and hundreds of syncs per step. Here the same update
// is a handful of torch multi-tensor (_foreach) kernels, the clipping factor stays on the device, and the
// gradient norm comes back as a device scalar that nobody has to read.
//
// The update is MaskedAdamW's (torch.optim.AdamW order, masked): g <- mask ? g : 0 (NaN included);
// g <- g * min(1, maxNorm / (||g|| + 1e-6)) when maxNorm > 0; p <- p * (mask ? 1 - lr*wd : 1);
// m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g^2; p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
// A frozen element is multiplied by exactly 1 (or not at all) and has exactly 0 added, so it stays
// bit-identical and its moments stay 0. Values may differ from MaskedAdamW's in the last bit (the
// multi-tensor kernels fuse a multiply and an add).
//
// Optional by design: this file registers "LORAPAR_FUSED_ADAMW".
#include <cmath>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

#define LP_ADAMW_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_FusedAdamW_##name

namespace {

const lorapar::FeatureRegistration kFusedAdamWFeature("LORAPAR_FUSED_ADAMW");

std::vector<torch::Tensor> tensors(JNIEnv* env, jlongArray handles) {
  std::vector<torch::Tensor> out;
  for (int64_t h : lorapar::longs(env, handles)) {
    out.push_back(T(h));
  }
  return out;
}

// All masks flattened into one bool vector (parameter order).
torch::Tensor flatMask(const std::vector<torch::Tensor>& masks) {
  std::vector<torch::Tensor> flat;
  flat.reserve(masks.size());
  for (const torch::Tensor& mk : masks) {
    flat.push_back((mk.scalar_type() == c10::ScalarType::Bool ? mk : mk.ne(0)).reshape({-1}));
  }
  return at::cat(flat);
}

// The fp32 gradients of `params` with inactive elements (masks[i] false) set to 0, NaN included: one
// flat copy of all of them (a cat: a few kernels, not one per tensor, so the GPU does not wait on the
// host launching hundreds of tiny copies), returned as views in the parameters' shapes.
std::vector<torch::Tensor> maskedGradients(const std::vector<torch::Tensor>& params,
                                           const std::vector<torch::Tensor>& masks) {
  std::vector<torch::Tensor> flat;
  std::vector<int64_t> numels;
  flat.reserve(params.size());
  numels.reserve(params.size());
  for (size_t i = 0; i < params.size(); i++) {
    const torch::Tensor& grad = params[i].grad();
    if (!grad.defined()) {
      throw std::invalid_argument("FusedAdamW: parameter " + std::to_string(i) + " has no gradient");
    }
    flat.push_back(grad.reshape({-1}));
    numels.push_back(grad.numel());
  }
  torch::Tensor all = at::cat(flat).to(c10::ScalarType::Float);  // a new buffer either way
  if (!masks.empty()) {
    all.masked_fill_(flatMask(masks).logical_not(), 0.0f);
  }
  std::vector<torch::Tensor> parts = all.split_with_sizes(numels);
  for (size_t i = 0; i < params.size(); i++) {
    parts[i] = parts[i].view(params[i].sizes());
  }
  return parts;
}

// The global L2 norm of `g`, a 0-dim fp32 tensor on their device.
torch::Tensor globalNorm(const std::vector<torch::Tensor>& g) {
  std::vector<torch::Tensor> norms = at::_foreach_norm(g, 2);
  return at::linalg_vector_norm(at::stack(norms), 2);
}

}  // namespace

// The global gradient norm over active elements (the norm stepNative clips with), 0-dim fp32 on the
// device; NaN or inf when an active gradient element is.
LP_ADAMW_FN(jlong, gradNormNative)(JNIEnv* env, jclass, jlongArray paramHandles, jlongArray maskHandles) {
  LP_TRY torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> params = tensors(env, paramHandles);
  std::vector<torch::Tensor> masks;
  if (maskHandles != nullptr) {
    masks = tensors(env, maskHandles);
  }
  if (params.empty() || (!masks.empty() && masks.size() != params.size())) {
    throw std::invalid_argument("FusedAdamW: parameters and masks differ in number");
  }
  return H(globalNorm(maskedGradients(params, masks)));
  LP_CATCH(env, 0)
}

// params, exp_avg, exp_avg_sq: fp32 tensors, updated in place; masks: null or one bool/0-1 tensor per
// parameter (true = trainable). Gradients are the parameters' autograd gradients. step is 1-based.
// Returns the global gradient norm over active elements (before clipping) as a 0-dim fp32 device tensor.
LP_ADAMW_FN(jlong, stepNative)(JNIEnv* env, jclass, jlongArray paramHandles, jlongArray expAvgHandles,
                               jlongArray expAvgSqHandles, jlongArray maskHandles, jlong step, jdouble lr,
                               jdouble beta1, jdouble beta2, jdouble eps, jdouble weightDecay, jdouble maxNorm,
                               jlong normHandle) {
  LP_TRY torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> params = tensors(env, paramHandles);
  std::vector<torch::Tensor> m = tensors(env, expAvgHandles);
  std::vector<torch::Tensor> v = tensors(env, expAvgSqHandles);
  std::vector<torch::Tensor> masks;
  if (maskHandles != nullptr) {
    masks = tensors(env, maskHandles);
  }
  const size_t n = params.size();
  if (n == 0 || m.size() != n || v.size() != n || (!masks.empty() && masks.size() != n)) {
    throw std::invalid_argument("FusedAdamW: parameters, moments and masks differ in number");
  }
  if (step < 1) {
    throw std::invalid_argument("FusedAdamW: step must be >= 1");
  }
  std::vector<torch::Tensor> g = maskedGradients(params, masks);
  // the caller may pass the norm it already computed (gradNormNative) and checked on the host
  torch::Tensor norm = normHandle != 0 ? T(normHandle) : globalNorm(g);  // 0-dim fp32
  if (maxNorm > 0) {
    torch::Tensor coef = at::clamp_max(at::reciprocal(norm.add(1e-6)).mul(maxNorm), 1.0);
    at::_foreach_mul_(g, coef);
  }
  const double bias1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias2Sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
  const double stepSize = lr / bias1;
  const double decay = 1.0 - lr * weightDecay;
  if (weightDecay != 0) {
    if (masks.empty()) {
      at::_foreach_mul_(params, decay);
    } else {
      // the decay factor of each element (1 where frozen), made flat in one kernel and applied as one
      // multi-tensor product
      torch::Tensor factors = at::where(flatMask(masks), at::full({}, decay, params[0].options()),
                                        at::ones({}, params[0].options()));
      std::vector<int64_t> numels;
      for (const torch::Tensor& p : params) {
        numels.push_back(p.numel());
      }
      std::vector<torch::Tensor> parts = factors.split_with_sizes(numels);
      for (size_t i = 0; i < n; i++) {
        parts[i] = parts[i].view(params[i].sizes());
      }
      at::_foreach_mul_(params, parts);
    }
  }
  at::_foreach_mul_(m, beta1);
  at::_foreach_add_(m, g, 1.0 - beta1);
  at::_foreach_mul_(v, beta2);
  at::_foreach_addcmul_(v, g, g, 1.0 - beta2);
  std::vector<torch::Tensor> denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, bias2Sqrt);
  at::_foreach_add_(denom, eps);
  at::_foreach_addcdiv_(params, m, denom, -stepSize);
  return H(norm);
  LP_CATCH(env, 0)
}

// Zeroes the autograd gradients of `params` in place (those that have one), as one call.
LP_ADAMW_FN(void, zeroGradientsNative)(JNIEnv* env, jclass, jlongArray paramHandles) {
  LP_TRY torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> grads;
  for (int64_t h : lorapar::longs(env, paramHandles)) {
    const torch::Tensor& g = T(h).grad();
    if (g.defined()) {
      grads.push_back(g);
    }
  }
  if (!grads.empty()) {
    at::_foreach_zero_(grads);
  }
  LP_CATCH(env, LP_VOID)
}
