// LoRA-PAR JNI: LoRA projections for training, natives of the Java class ai.lorapar.engine.TrainingOps.
//
// A LoRA projection in DJL NDArray ops is a dozen JNI calls per adapter (cast to fp32, a dropout mask
// from a counter hash of ~16 int64 ops over [N, in], the masked input, two products, a scale, the
// add), and autograd keeps the fp32 input copy, the fp32 mask and the masked input of every adapter
// for backward: 8 bytes per input element per adapter. Here a whole projection (the frozen product
// plus the deltas of its adapters, e.g. q/k/v as one fused weight) is one call and one autograd node
// that saves only its input, the small [N, r] products and the dropout keys: the masks are drawn
// again in backward from a generator seeded with the same key (so they are the same masks).
//
// Dropout masks are a deterministic function of the key on one kind of device (CPU: mt19937 seeded
// with the key; CUDA: Philox with seed = key, offset 0); they differ from the NDArray path's hash
// masks, and between CPU and CUDA.
//
// Optional by design: this file registers "LORAPAR_TRAIN_LORA"; without it Java uses NDArray ops.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/custom_function.h>

#include <mutex>

#include <ATen/record_function.h>

#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#define LP_TRAIN_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_ai_lorapar_engine_TrainingOps_##name

namespace {

const lorapar::FeatureRegistration kTrainLoraFeature("LORAPAR_TRAIN_LORA");

// An independent generator of `device`'s kind seeded with `key`: the default generator is neither
// read nor advanced.
at::Generator keyedGenerator(const torch::Device& device, int64_t key) {
  if (device.is_cpu()) {
    return at::detail::createCPUGenerator(static_cast<uint64_t>(key));
  }
  at::Generator def = at::globalContext().defaultGenerator(device);
  at::Generator gen;
  {
    std::lock_guard<std::mutex> lock(def.mutex());
    gen = def.clone();
  }
  gen.set_current_seed(static_cast<uint64_t>(key));
  return gen;
}

// Keep-mask (bool, true = kept with probability 1 - p) of shape [rows, cols] on `like`'s device.
// Always drawn over a 2-d [rows, cols] tensor, so the same key gives the same mask in the fused
// projection and in keyedDropout.
torch::Tensor keepMask(const torch::Tensor& like, int64_t rows, int64_t cols, double p, int64_t key) {
  at::Generator gen = keyedGenerator(like.device(), key);
  torch::Tensor keep = at::empty({rows, cols}, like.options().dtype(at::kBool));
  keep.bernoulli_(1.0 - p, gen);
  return keep;
}

// Per-call settings of the fused LoRA projection (not tensors: autograd ignores them).
struct LoraMeta {
  std::vector<int64_t> offsets;  // column of the output where each adapter's part starts
  std::vector<int64_t> outs;     // width of each part
  std::vector<int64_t> keys;     // dropout key of each adapter (unused where dropout is 0)
  std::vector<double> scalings;
  std::vector<double> dropouts;
  bool fp32 = true;  // LoRA maths in fp32 (PEFT casts the input to the adapter's dtype) or in x's dtype
  bool hasBias = false;
};

// y = x·Wᵀ + bias, then for each adapter i: y[:, off_i : off_i + out_i] += s_i · (drop_i(x)·A_iᵀ)·B_iᵀ.
// W and bias are frozen (no gradient); gradients reach x, A_i and B_i.
struct LoraLinearFn : public torch::autograd::Function<LoraLinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const std::optional<torch::Tensor>& bias, at::TensorList as, at::TensorList bs,
                               const LoraMeta& meta) {
    const int64_t n = static_cast<int64_t>(as.size());
    const int64_t in = x.size(-1);
    torch::Tensor y = at::linear(x, w, bias);
    const int64_t outTotal = y.size(-1);
    torch::Tensor x2 = x.reshape({-1, in});
    torch::Tensor y2 = y.view({-1, outTotal});
    const int64_t rows = x2.size(0);
    const c10::ScalarType ct = meta.fp32 ? c10::ScalarType::Float : x.scalar_type();
    torch::Tensor xc = x2.scalar_type() == ct ? x2 : x2.to(ct);
    bool noDropout = true;
    for (double p : meta.dropouts) {
      noDropout = noDropout && p <= 0;
    }
    std::vector<torch::Tensor> hs;
    hs.reserve(n);
    if (noDropout && n > 1) {
      // one product for all adapters' A (they share the input when nothing is dropped)
      std::vector<torch::Tensor> ac;
      for (int64_t i = 0; i < n; i++) {
        ac.push_back(as[i].to(ct));
      }
      torch::Tensor hAll = at::mm(xc, at::cat(ac, 0).t());  // [N, sum r]
      int64_t r0 = 0;
      for (int64_t i = 0; i < n; i++) {
        int64_t r = as[i].size(0);
        hs.push_back(hAll.narrow(1, r0, r));
        r0 += r;
      }
    } else {
      for (int64_t i = 0; i < n; i++) {
        double p = meta.dropouts[i];
        // drop(x)·Aᵀ = (x·keep)·(A/(1-p))ᵀ: the 1/(1-p) goes on the small A, one pass over x less
        torch::Tensor xd = p > 0 ? xc.mul(keepMask(xc, rows, in, p, meta.keys[i])) : xc;
        torch::Tensor a = as[i].to(ct);
        if (p > 0) {
          a = a.mul(1.0 / (1.0 - p));
        }
        hs.push_back(at::mm(xd, a.t()));  // [N, r]
      }
    }
    for (int64_t i = 0; i < n; i++) {
      torch::Tensor part = y2.narrow(1, meta.offsets[i], meta.outs[i]);
      torch::Tensor b = bs[i].to(ct);
      if (meta.fp32) {
        // the delta in fp32, added to a bf16/fp16 output with one rounding (as PEFT adds it)
        part.add_(at::mm(hs[i], b.t()).mul_(meta.scalings[i]));
      } else {
        part.addmm_(hs[i], b.t(), 1.0, meta.scalings[i]);
      }
    }
    variable_list toSave;
    toSave.reserve(2 + 3 * n);
    toSave.push_back(x);
    toSave.push_back(w);
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(as[i]);
    }
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(bs[i]);
    }
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(hs[i]);
    }
    ctx->save_for_backward(toSave);
    ctx->saved_data["n"] = n;
    ctx->saved_data["offsets"] = meta.offsets;
    ctx->saved_data["outs"] = meta.outs;
    ctx->saved_data["keys"] = meta.keys;
    ctx->saved_data["scalings"] = meta.scalings;
    ctx->saved_data["dropouts"] = meta.dropouts;
    ctx->saved_data["fp32"] = meta.fp32;
    ctx->saved_data["hasBias"] = meta.hasBias;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const int64_t n = ctx->saved_data["n"].toInt();
    const std::vector<int64_t> offsets = ctx->saved_data["offsets"].toIntVector();
    const std::vector<int64_t> outs = ctx->saved_data["outs"].toIntVector();
    const std::vector<int64_t> keys = ctx->saved_data["keys"].toIntVector();
    const std::vector<double> scalings = ctx->saved_data["scalings"].toDoubleVector();
    const std::vector<double> dropouts = ctx->saved_data["dropouts"].toDoubleVector();
    const bool fp32 = ctx->saved_data["fp32"].toBool();
    const bool hasBias = ctx->saved_data["hasBias"].toBool();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& w = saved[1];
    const int64_t in = x.size(-1);
    torch::Tensor g = grads[0];
    const int64_t outTotal = g.size(-1);
    torch::Tensor g2 = g.reshape({-1, outTotal});
    torch::Tensor x2 = x.reshape({-1, in});
    const int64_t rows = x2.size(0);
    const c10::ScalarType ct = fp32 ? c10::ScalarType::Float : x.scalar_type();
    // autograd edges: x 0, w 1, bias 2 when given, then the A's, then the B's
    const size_t base = hasBias ? 3 : 2;
    const bool needX = ctx->needs_input_grad(0);
    // returned gradients: one per forward argument, lists expanded: x, w, bias, A's, B's, meta
    variable_list out(static_cast<size_t>(2 * n + 4));
    torch::Tensor dx2;
    if (needX) {
      dx2 = at::mm(g2, w);  // the frozen product's input gradient
    }
    torch::Tensor xc;
    for (int64_t i = 0; i < n; i++) {
      const bool needA = ctx->needs_input_grad(base + i);
      const bool needB = ctx->needs_input_grad(base + n + i);
      if (!needA && !needB && !needX) {
        continue;
      }
      const torch::Tensor& aLeaf = saved[2 + i];
      const torch::Tensor& bLeaf = saved[2 + n + i];
      const torch::Tensor& h = saved[2 + 2 * n + i];
      // this part's output gradient (a strided view, no copy in the compute dtype); the scaling is applied
      // to the small products instead of to this [N, out] block
      torch::Tensor gpart = g2.narrow(1, offsets[i], outs[i]);
      torch::Tensor gc = gpart.scalar_type() == ct ? gpart : gpart.to(ct);
      if (needB) {
        out[3 + n + i] = at::mm(gc.t(), h).mul_(scalings[i]).to(bLeaf.scalar_type());
      }
      if (!needA && !needX) {
        continue;
      }
      torch::Tensor dh = at::mm(gc, bLeaf.to(ct)).mul_(scalings[i]);  // [N, r]
      const double p = dropouts[i];
      const double inv = p > 0 ? 1.0 / (1.0 - p) : 1.0;
      torch::Tensor keep;
      if (p > 0) {
        keep = keepMask(x2, rows, in, p, keys[i]);  // the forward's mask, drawn again
      }
      if (needA) {
        if (!xc.defined()) {
          xc = x2.scalar_type() == ct ? x2 : x2.to(ct);
        }
        // dA = dhᵀ·drop(x) = (dhᵀ·(x·keep))/(1-p): the factor on the small [r, in] result
        torch::Tensor xd = p > 0 ? xc.mul(keep) : xc;
        torch::Tensor da = at::mm(dh.t(), xd);
        if (p > 0) {
          da.mul_(inv);
        }
        out[3 + i] = da.to(aLeaf.scalar_type());
      }
      if (needX) {
        // dx += (dh·A)·keep/(1-p) = ((dh/(1-p))·A)·keep: the factor on the small [N, r] dh
        torch::Tensor t = at::mm(p > 0 ? dh.mul(inv) : dh, aLeaf.to(ct));
        if (p > 0) {
          t.mul_(keep);
        }
        dx2.add_(t);
      }
    }
    if (needX) {
      out[0] = dx2.view(x.sizes());
    }
    return out;
  }
};

}  // namespace

// The fused LoRA projection (LoraLinearFn). bias 0 for none; per adapter: A [r, in], B [outs_i, r]
// (fp32 leaves), the column offset and width of its part of the output, scaling, dropout rate and key.
LP_TRAIN_FN(jlong, loraLinearNative)(JNIEnv* env, jclass, jlong xh, jlong wh, jlong biasH, jlongArray aHandles,
                                     jlongArray bHandles, jlongArray offsets, jlongArray outs,
                                     jdoubleArray scalings, jdoubleArray dropouts, jlongArray keys, jboolean fp32) {
  LP_TRY RECORD_FUNCTION("lorapar::lora_linear", std::vector<c10::IValue>());
  std::vector<int64_t> ah = lorapar::longs(env, aHandles);
  std::vector<int64_t> bh = lorapar::longs(env, bHandles);
  const size_t n = ah.size();
  LoraMeta meta;
  meta.offsets = lorapar::longs(env, offsets);
  meta.outs = lorapar::longs(env, outs);
  meta.keys = lorapar::longs(env, keys);
  meta.scalings.resize(n);
  meta.dropouts.resize(n);
  if (bh.size() != n || meta.offsets.size() != n || meta.outs.size() != n || meta.keys.size() != n ||
      static_cast<size_t>(env->GetArrayLength(scalings)) != n ||
      static_cast<size_t>(env->GetArrayLength(dropouts)) != n) {
    throw std::invalid_argument("loraLinear: per-adapter arrays differ in length");
  }
  if (n > 0) {
    env->GetDoubleArrayRegion(scalings, 0, static_cast<jsize>(n), meta.scalings.data());
    env->GetDoubleArrayRegion(dropouts, 0, static_cast<jsize>(n), meta.dropouts.data());
  }
  meta.fp32 = fp32 == JNI_TRUE;
  meta.hasBias = biasH != 0;
  std::vector<torch::Tensor> as;
  std::vector<torch::Tensor> bs;
  for (size_t i = 0; i < n; i++) {
    as.push_back(T(ah[i]));
    bs.push_back(T(bh[i]));
  }
  std::optional<torch::Tensor> bias = lorapar::optT(biasH);
  torch::Tensor y = LoraLinearFn::apply(T(xh), T(wh), bias, at::TensorList(as), at::TensorList(bs), meta);
  return H(y);
  LP_CATCH(env, 0)
}

// Inverted dropout x · keep / (1 - p) with the keep-mask of `key` (the same mask loraLinearNative
// draws for that key over x's [rows, last dim]); differentiable; x unchanged when p <= 0.
LP_TRAIN_FN(jlong, keyedDropoutNative)(JNIEnv* env, jclass, jlong xh, jdouble p, jlong key) {
  LP_TRY RECORD_FUNCTION("lorapar::keyed_dropout", std::vector<c10::IValue>());
  const auto& x = T(xh);
  if (p <= 0) {
    return H(x);
  }
  const int64_t cols = x.size(-1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  torch::Tensor keep = keepMask(x, rows, cols, p, key).view(x.sizes());
  return H(x.mul(keep).mul_(1.0 / (1.0 - p)));
  LP_CATCH(env, 0)
}

// The keep-mask itself (bool [rows, cols]) for `key`, as the two natives above draw it (tests).
LP_TRAIN_FN(jlong, keepMaskNative)(JNIEnv* env, jclass, jlong likeH, jlong rows, jlong cols, jdouble p, jlong key) {
  LP_TRY return H(keepMask(T(likeH), rows, cols, p, key));
  LP_CATCH(env, 0)
}
