// LoRA-PAR JNI: RMSNorm and SiLU·up for training with lean saved activations, natives of the Java
// class ai.lorapar.engine.TrainingOps.
//
// Under autograd, RMSNorm as transformers writes it keeps the fp32 copy of its input for backward
// (4 bytes per element), and silu(gate)·up keeps gate, up and silu(gate). These nodes compute the same
// values (same ops in forward) but keep only the input in its own dtype plus one fp32 number per row
// (RMSNorm), or only the gate/up input (SiLU·up), and recompute the rest in backward.
//
// Optional by design: this file registers "LORAPAR_TRAIN_NORM"; without it Java uses other ops.
#include <torch/csrc/autograd/custom_function.h>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#define LP_TRAIN_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_TrainingOps_##name

namespace {

const lorapar::FeatureRegistration kTrainNormFeature("LORAPAR_TRAIN_NORM");

// y = (x / sqrt(mean(x², -1) + eps)) in fp32, cast to x's dtype, times weight (frozen).
struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               double eps) {
    torch::Tensor xf = x.scalar_type() == c10::ScalarType::Float ? x : x.to(c10::ScalarType::Float);
    std::vector<int64_t> last{-1};
    torch::Tensor den = xf.square().mean(at::IntArrayRef(last), true).add(eps).sqrt();  // [..., 1] fp32
    torch::Tensor normed = xf.div(den);
    if (normed.scalar_type() != x.scalar_type()) {
      normed = normed.to(x.scalar_type());
    }
    ctx->save_for_backward({x, weight, den});
    return normed.mul(weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& den = saved[2];
    variable_list out(3);
    if (!ctx->needs_input_grad(0)) {
      return out;
    }
    // gn = d y / d normed (in x's dtype, as autograd forms it), then the fp32 RMSNorm gradient:
    // dx = (gn − x̂ · mean(gn · x̂)) / den with x̂ = x / den
    torch::Tensor gn = grads[0].mul(weight).to(c10::ScalarType::Float);
    torch::Tensor xf = x.to(c10::ScalarType::Float);
    torch::Tensor xhat = xf.div(den);
    std::vector<int64_t> last{-1};
    torch::Tensor dot = gn.mul(xhat).mean(at::IntArrayRef(last), true);
    torch::Tensor dx = gn.sub(xhat.mul(dot)).div(den);
    out[0] = dx.to(x.scalar_type());
    return out;
  }
};

// silu(gate) · up for gateUp = [..., 2F] (gate first, then up).
struct SiluMulFn : public torch::autograd::Function<SiluMulFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gateUp) {
    const int64_t f = gateUp.size(-1) / 2;
    ctx->save_for_backward({gateUp});
    return torch::silu(gateUp.narrow(-1, 0, f)).mul(gateUp.narrow(-1, f, f));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& gu = saved[0];
    const int64_t f = gu.size(-1) / 2;
    torch::Tensor gate = gu.narrow(-1, 0, f).to(c10::ScalarType::Float);
    torch::Tensor up = gu.narrow(-1, f, f).to(c10::ScalarType::Float);
    torch::Tensor g = grads[0].to(c10::ScalarType::Float);
    torch::Tensor sig = torch::sigmoid(gate);
    torch::Tensor silu = gate.mul(sig);
    torch::Tensor dUp = g.mul(silu);
    // d silu / d gate = sig · (1 + gate · (1 − sig))
    torch::Tensor dGate = g.mul(up).mul(sig.mul(gate.mul(sig.neg().add(1.0)).add(1.0)));
    variable_list out(1);
    out[0] = torch::cat({dGate, dUp}, -1).to(gu.scalar_type());
    return out;
  }
};

}  // namespace

// RMSNorm of x [..., H] with weight [H]; differentiable in x (weight frozen).
LP_TRAIN_FN(jlong, rmsNormNative)(JNIEnv* env, jclass, jlong xh, jlong wh, jdouble eps) {
  LP_TRY return H(RmsNormFn::apply(T(xh), T(wh), static_cast<double>(eps)));
  LP_CATCH(env, 0)
}

// silu(gate) · up of gateUp [..., 2F]; differentiable.
LP_TRAIN_FN(jlong, siluMulNative)(JNIEnv* env, jclass, jlong h) {
  LP_TRY return H(SiluMulFn::apply(T(h)));
  LP_CATCH(env, 0)
}
