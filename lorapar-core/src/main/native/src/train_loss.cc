// LoRA-PAR JNI: the language-model head and token cross-entropy at selected positions, natives of the
// Java class ai.lorapar.engine.TrainingOps.
//
// Autograd over logits → fp32 → log_softmax → gather keeps an fp32 [N, vocab] log-softmax for backward
// (1.9 GB for 3,072 answer tokens of Qwen's 151,936-word vocabulary) besides the logits themselves. This
// node keeps only the hidden rows it was given and one fp32 log-sum-exp per row: forward and backward
// compute the logits chunk by chunk (rows at a time), so at most one chunk's [rows, vocab] logits exist.
// Backward computes the head's product once more (a frozen weight: no weight gradient).
//
// Optional by design: this file registers "LORAPAR_TRAIN_LOSS"; without it Java chunks NDArray ops.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/record_function.h>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#define LP_TRAIN_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_TrainingOps_##name

namespace {

const lorapar::FeatureRegistration kTrainLossFeature("LORAPAR_TRAIN_LOSS");

// nll[i] = logsumexp(h_i·Wᵀ) − (h_i·Wᵀ)[target_i], in fp32 from the compute-dtype logits.
struct TokenNllFn : public torch::autograd::Function<TokenNllFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, int64_t chunk) {
    const int64_t n = hidden.size(0);
    auto f32 = hidden.options().dtype(c10::ScalarType::Float);
    torch::Tensor nll = at::empty({n}, f32);
    torch::Tensor lse = at::empty({n}, f32);
    torch::Tensor tg = targets.to(c10::ScalarType::Long);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t c = std::min(chunk, n - s);
      torch::Tensor logits = at::mm(hidden.narrow(0, s, c), weight.t()).to(c10::ScalarType::Float);  // [c, V]
      torch::Tensor l = at::logsumexp(logits, {1});
      torch::Tensor picked = logits.gather(1, tg.narrow(0, s, c).unsqueeze(1)).squeeze(1);
      lse.narrow(0, s, c).copy_(l);
      nll.narrow(0, s, c).copy_(l.sub(picked));
    }
    ctx->save_for_backward({hidden, weight, tg, lse});
    ctx->saved_data["chunk"] = chunk;
    return nll;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& tg = saved[2];
    const torch::Tensor& lse = saved[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    torch::Tensor g = grads[0].to(c10::ScalarType::Float);
    const int64_t n = hidden.size(0);
    variable_list out(4);
    if (!ctx->needs_input_grad(0)) {
      return out;
    }
    torch::Tensor dh = at::empty_like(hidden);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t c = std::min(chunk, n - s);
      torch::Tensor logits = at::mm(hidden.narrow(0, s, c), weight.t()).to(c10::ScalarType::Float);
      // d nll / d logits = softmax − onehot(target), times the incoming gradient of each row
      torch::Tensor p = logits.sub_(lse.narrow(0, s, c).unsqueeze(1)).exp_();
      torch::Tensor idx = tg.narrow(0, s, c).unsqueeze(1);
      p.scatter_add_(1, idx, at::full({c, 1}, -1.0, p.options()));
      p.mul_(g.narrow(0, s, c).unsqueeze(1));
      dh.narrow(0, s, c).copy_(at::mm(p.to(hidden.scalar_type()), weight));
    }
    out[0] = dh;
    return out;
  }
};

}  // namespace

// hidden [N, H] (final normed hidden states of the selected positions), weight [V, H] (the head, frozen),
// targets [N] int64 in [0, V); returns the per-row negative log-likelihood [N] fp32, differentiable in
// hidden. chunk: rows of logits computed at a time.
LP_TRAIN_FN(jlong, tokenNllNative)(JNIEnv* env, jclass, jlong hiddenH, jlong weightH, jlong targetsH, jlong chunk) {
  LP_TRY RECORD_FUNCTION("lorapar::token_nll", std::vector<c10::IValue>());
  const auto& hidden = T(hiddenH);
  const auto& weight = T(weightH);
  const auto& targets = T(targetsH);
  if (hidden.dim() != 2 || weight.dim() != 2 || hidden.size(1) != weight.size(1) || targets.dim() != 1 ||
      targets.size(0) != hidden.size(0)) {
    throw std::invalid_argument("tokenNll: hidden must be [N, H], weight [V, H], targets [N]");
  }
  if (chunk <= 0) {
    throw std::invalid_argument("tokenNll: chunk must be positive");
  }
  return H(TokenNllFn::apply(hidden, weight, targets, static_cast<int64_t>(chunk)));
  LP_CATCH(env, 0)
}
