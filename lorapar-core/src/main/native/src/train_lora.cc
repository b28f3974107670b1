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
    // Inside a CUDA-graph capture a keyed generator cannot draw (a generator the graph has not registered
    // cannot advance its offset there): the masks come from the default generator, which the graph
    // registers (its draws differ from replay to replay and follow its seed), and are kept for backward
    // (one byte per input element per adapter) instead of being drawn again from the key.
    const bool savedMasks = !noDropout && lorapar::capturing(x.device());
    std::vector<torch::Tensor> keeps(static_cast<size_t>(n));
    std::vector<torch::Tensor> hs;
    hs.reserve(n);
    // A and B in the compute dtype, cast once: backward uses these copies (n x r x (in + out) elements)
    // instead of casting the leaves again
    std::vector<torch::Tensor> ac;
    std::vector<torch::Tensor> bc;
    for (int64_t i = 0; i < n; i++) {
      ac.push_back(as[i].to(ct));
      bc.push_back(bs[i].to(ct));
    }
    if (noDropout && n > 1) {
      // one product for all adapters' A (they share the input when nothing is dropped)
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
        if (p > 0) {
          keeps[i] = savedMasks ? at::empty({rows, in}, xc.options().dtype(at::kBool)).bernoulli_(1.0 - p)
                                : keepMask(xc, rows, in, p, meta.keys[i]);
        }
        // drop(x)·Aᵀ = (x·keep)·(A/(1-p))ᵀ: the 1/(1-p) goes on the small A, one pass over x less
        torch::Tensor xd = p > 0 ? xc.mul(keeps[i]) : xc;
        torch::Tensor a = p > 0 ? ac[i].mul(1.0 / (1.0 - p)) : ac[i];
        hs.push_back(at::mm(xd, a.t()));  // [N, r]
      }
    }
    for (int64_t i = 0; i < n; i++) {
      torch::Tensor part = y2.narrow(1, meta.offsets[i], meta.outs[i]);
      const torch::Tensor& b = bc[i];
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
      toSave.push_back(ac[i]);
    }
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(bc[i]);
    }
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(hs[i]);
    }
    if (savedMasks) {
      for (int64_t i = 0; i < n; i++) {
        toSave.push_back(keeps[i]);  // undefined where the adapter has no dropout
      }
    }
    ctx->save_for_backward(toSave);
    ctx->saved_data["savedMasks"] = savedMasks;
    ctx->saved_data["n"] = n;
    ctx->saved_data["offsets"] = meta.offsets;
    ctx->saved_data["outs"] = meta.outs;
    ctx->saved_data["keys"] = meta.keys;
    ctx->saved_data["scalings"] = meta.scalings;
    ctx->saved_data["dropouts"] = meta.dropouts;
    ctx->saved_data["fp32"] = meta.fp32;
    ctx->saved_data["hasBias"] = meta.hasBias;
    ctx->saved_data["aDtype"] = n > 0 ? static_cast<int64_t>(as[0].scalar_type()) : int64_t{0};
    ctx->saved_data["bDtype"] = n > 0 ? static_cast<int64_t>(bs[0].scalar_type()) : int64_t{0};
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const int64_t n = ctx->saved_data["n"].toInt();
    const std::vector<int64_t> offsets = ctx->saved_data["offsets"].toIntVector();
    const std::vector<int64_t> outs = ctx->saved_data["outs"].toIntVector();
    const std::vector<int64_t> keys = ctx->saved_data["keys"].toIntVector();
    // the leaves' dtype (gradients are returned in it); the saved A and B are the compute-dtype copies
    const auto aDtype = static_cast<c10::ScalarType>(ctx->saved_data["aDtype"].toInt());
    const auto bDtype = static_cast<c10::ScalarType>(ctx->saved_data["bDtype"].toInt());
    const std::vector<double> scalings = ctx->saved_data["scalings"].toDoubleVector();
    const std::vector<double> dropouts = ctx->saved_data["dropouts"].toDoubleVector();
    const bool fp32 = ctx->saved_data["fp32"].toBool();
    const bool hasBias = ctx->saved_data["hasBias"].toBool();
    const bool savedMasks = ctx->saved_data["savedMasks"].toBool();
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
      const torch::Tensor& aC = saved[2 + i];  // A in the compute dtype
      const torch::Tensor& bC = saved[2 + n + i];
      const torch::Tensor& h = saved[2 + 2 * n + i];
      // this part's output gradient (a strided view, no copy in the compute dtype); the scaling is applied
      // to the small products instead of to this [N, out] block
      torch::Tensor gpart = g2.narrow(1, offsets[i], outs[i]);
      torch::Tensor gc = gpart.scalar_type() == ct ? gpart : gpart.to(ct);
      if (needB) {
        out[3 + n + i] = at::mm(gc.t(), h).mul_(scalings[i]).to(bDtype);
      }
      if (!needA && !needX) {
        continue;
      }
      torch::Tensor dh = at::mm(gc, bC).mul_(scalings[i]);  // [N, r]
      const double p = dropouts[i];
      const double inv = p > 0 ? 1.0 / (1.0 - p) : 1.0;
      torch::Tensor keep;
      if (p > 0) {
        // the forward's mask: kept by a captured forward, else drawn again from its key
        keep = savedMasks ? saved[2 + 3 * n + i] : keepMask(x2, rows, in, p, keys[i]);
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
        out[3 + i] = da.to(aDtype);
      }
      if (needX) {
        // dx += (dh·A)·keep/(1-p) = ((dh/(1-p))·A)·keep: the factor on the small [N, r] dh
        torch::Tensor t = at::mm(p > 0 ? dh.mul(inv) : dh, aC);
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

const lorapar::FeatureRegistration kTrainLoraRowsFeature("LORAPAR_TRAIN_LORA_ROWS");

// t (fp32) as hi + lo, both bf16: hi = bf16(t), lo = bf16(t - hi). A product with a bf16-exact operand
// (x, or a bf16 output gradient) as [hi, hi, lo]·[v_hi, v_lo, v_hi] accumulates in fp32 on tensor
// cores with ~16 significant bits per factor: fp32-grade for a term that is added to a bf16 tensor.
std::pair<torch::Tensor, torch::Tensor> splitBf16(const torch::Tensor& t) {
  torch::Tensor hi = t.to(c10::ScalarType::BFloat16);
  torch::Tensor lo = t.sub(hi.to(c10::ScalarType::Float)).to(c10::ScalarType::BFloat16);
  return {hi, lo};
}

// y += u·vᵀ for fp32 u [N, k], v [M, k] into a bf16 y [N, M] (a strided view is fine) in one bf16 product
// with fp32 accumulation and one rounding of the sum (the fp32 product then a mixed add rounds the same
// way, through an fp32 [N, M] temporary and a slow strided add).
void addProductBf16(torch::Tensor& y, const torch::Tensor& u, const torch::Tensor& v) {
  auto [uHi, uLo] = splitBf16(u);
  auto [vHi, vLo] = splitBf16(v);
  y.addmm_(at::cat({uHi, uHi, uLo}, 1), at::cat({vHi, vLo, vHi}, 1).t());
}

// Per-call settings of the per-example projection: LoraMeta's layout plus the per-row gradient buffers.
struct LoraRowsMeta {
  std::vector<int64_t> offsets;
  std::vector<int64_t> outs;
  std::vector<double> scalings;
  std::vector<torch::Tensor> rowGradA;  // per adapter [R, r, in] fp32, accumulated into by backward
  std::vector<torch::Tensor> rowGradB;  // per adapter [R, out_i, r] fp32
};

// The fused projection of LoraLinearFn (fp32 LoRA maths, no dropout: a scoring pass) whose backward
// gives per-example gradients: row b of the batch's gradient of A and B goes into row b of the given
// buffers (the gradient of row b's own loss, since rows do not mix in a projection); the shared A and
// B get none. Forward is LoraLinearFn's exactly. Per-row copies of A and B through batched products
// (the NDArray path) give the same numbers with ~5 more [N, out]-sized passes per adapter; here the
// shared products stay plain matrix products and only the two per-row gradients are batched.
struct LoraRowsFn : public torch::autograd::Function<LoraRowsFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const std::optional<torch::Tensor>& bias, at::TensorList as, at::TensorList bs,
                               const LoraRowsMeta& meta) {
    const int64_t n = static_cast<int64_t>(as.size());
    const int64_t in = x.size(-1);
    torch::Tensor y = at::linear(x, w, bias);
    const int64_t outTotal = y.size(-1);
    torch::Tensor y2 = y.view({-1, outTotal});
    torch::Tensor x2 = x.reshape({-1, in});
    torch::Tensor xc = x2.scalar_type() == c10::ScalarType::Float ? x2 : x2.to(c10::ScalarType::Float);
    std::vector<torch::Tensor> ac;
    for (int64_t i = 0; i < n; i++) {
      ac.push_back(as[i].to(c10::ScalarType::Float));
    }
    torch::Tensor hAll = at::mm(xc, at::cat(ac, 0).t());  // [N, sum r], as LoraLinearFn without dropout
    const bool bf16 = y.scalar_type() == c10::ScalarType::BFloat16;
    int64_t r0 = 0;
    for (int64_t i = 0; i < n; i++) {
      const int64_t r = as[i].size(0);
      torch::Tensor part = y2.narrow(1, meta.offsets[i], meta.outs[i]);
      torch::Tensor h = hAll.narrow(1, r0, r);
      torch::Tensor scaledB = bs[i].to(c10::ScalarType::Float).mul(meta.scalings[i]);  // [out, r]
      if (bf16) {
        addProductBf16(part, h, scaledB);
      } else {
        part.add_(at::mm(h, scaledB.t()));
      }
      r0 += r;
    }
    variable_list toSave{x, w, hAll};
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(as[i]);
    }
    for (int64_t i = 0; i < n; i++) {
      toSave.push_back(bs[i]);
    }
    ctx->save_for_backward(toSave);
    ctx->saved_data["n"] = n;
    ctx->saved_data["offsets"] = meta.offsets;
    ctx->saved_data["outs"] = meta.outs;
    ctx->saved_data["scalings"] = meta.scalings;
    ctx->saved_data["rowGradA"] = meta.rowGradA;
    ctx->saved_data["rowGradB"] = meta.rowGradB;
    ctx->saved_data["hasBias"] = bias.has_value();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const int64_t n = ctx->saved_data["n"].toInt();
    const std::vector<int64_t> offsets = ctx->saved_data["offsets"].toIntVector();
    const std::vector<int64_t> outs = ctx->saved_data["outs"].toIntVector();
    const std::vector<double> scalings = ctx->saved_data["scalings"].toDoubleVector();
    const std::vector<torch::Tensor> rowGradA = ctx->saved_data["rowGradA"].toTensorVector();
    const std::vector<torch::Tensor> rowGradB = ctx->saved_data["rowGradB"].toTensorVector();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& w = saved[1];
    const torch::Tensor& hAll = saved[2];
    const int64_t in = x.size(-1);
    torch::Tensor g2 = grads[0].reshape({-1, grads[0].size(-1)});
    torch::Tensor x2 = x.reshape({-1, in});
    const int64_t rowsTotal = x2.size(0);
    const int64_t examples = rowGradA.empty() ? 1 : rowGradA[0].size(0);
    if (examples < 1 || rowsTotal % examples != 0) {
      throw std::invalid_argument("loraLinearRows: " + std::to_string(rowsTotal) + " input rows do not split into " +
                                  std::to_string(examples) + " examples");
    }
    const int64_t len = rowsTotal / examples;
    const bool needX = ctx->needs_input_grad(0);
    torch::Tensor dx2;
    if (needX) {
      dx2 = at::mm(g2, w);
    }
    torch::Tensor xc = x2.scalar_type() == c10::ScalarType::Float ? x2 : x2.to(c10::ScalarType::Float);
    torch::Tensor xc3 = xc.view({examples, len, in});
    torch::NoGradGuard noGrad;
    const bool bf16 = needX && dx2.scalar_type() == c10::ScalarType::BFloat16;
    std::vector<torch::Tensor> dhs;
    std::vector<torch::Tensor> asF;
    int64_t r0 = 0;
    for (int64_t i = 0; i < n; i++) {
      const torch::Tensor& a = saved[3 + i];
      const torch::Tensor& b = saved[3 + n + i];
      const int64_t r = a.size(0);
      const double s = scalings[i];
      torch::Tensor gc = g2.narrow(1, offsets[i], outs[i]).to(c10::ScalarType::Float).contiguous();  // [N, out]
      torch::Tensor h3 = hAll.narrow(1, r0, r).reshape({examples, len, r});
      // row b: dB_b = s · g_bᵀ·h_b, dA_b = (s · g_b·B)ᵀ·x_b
      rowGradB[i].baddbmm_(gc.view({examples, len, outs[i]}).transpose(1, 2), h3, 1.0, s);
      torch::Tensor dh = at::mm(gc, b.to(c10::ScalarType::Float)).mul_(s);  // [N, r]
      rowGradA[i].baddbmm_(dh.view({examples, len, r}).transpose(1, 2), xc3);
      if (bf16) {
        dhs.push_back(dh);
        asF.push_back(a.to(c10::ScalarType::Float));
      } else if (needX) {
        dx2.add_(at::mm(dh, a.to(c10::ScalarType::Float)));
      }
      r0 += r;
    }
    if (bf16 && n > 0) {  // all adapters' input-gradient terms as one product: dx += [dh_i]·[A_i]
      addProductBf16(dx2, at::cat(dhs, 1), at::cat(asF, 0).t());
    }
    variable_list out(static_cast<size_t>(2 * n + 4));
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

// The fused LoRA projection of a scoring pass with per-example gradients (LoraRowsFn): as
// loraLinearNative without dropout and with fp32 LoRA maths; per adapter also the [R, r, in] and
// [R, out_i, r] fp32 buffers that backward adds row b's gradients of A and B into.
LP_TRAIN_FN(jlong, loraLinearRowsNative)(JNIEnv* env, jclass, jlong xh, jlong wh, jlong biasH, jlongArray aHandles,
                                         jlongArray bHandles, jlongArray offsets, jlongArray outs,
                                         jdoubleArray scalings, jlongArray rowGradAHandles,
                                         jlongArray rowGradBHandles) {
  LP_TRY RECORD_FUNCTION("lorapar::lora_linear_rows", std::vector<c10::IValue>());
  std::vector<int64_t> ah = lorapar::longs(env, aHandles);
  std::vector<int64_t> bh = lorapar::longs(env, bHandles);
  std::vector<int64_t> gah = lorapar::longs(env, rowGradAHandles);
  std::vector<int64_t> gbh = lorapar::longs(env, rowGradBHandles);
  const size_t n = ah.size();
  LoraRowsMeta meta;
  meta.offsets = lorapar::longs(env, offsets);
  meta.outs = lorapar::longs(env, outs);
  meta.scalings.resize(n);
  if (bh.size() != n || gah.size() != n || gbh.size() != n || meta.offsets.size() != n || meta.outs.size() != n ||
      static_cast<size_t>(env->GetArrayLength(scalings)) != n) {
    throw std::invalid_argument("loraLinearRows: per-adapter arrays differ in length");
  }
  if (n > 0) {
    env->GetDoubleArrayRegion(scalings, 0, static_cast<jsize>(n), meta.scalings.data());
  }
  std::vector<torch::Tensor> as;
  std::vector<torch::Tensor> bs;
  for (size_t i = 0; i < n; i++) {
    as.push_back(T(ah[i]));
    bs.push_back(T(bh[i]));
    const torch::Tensor& ga = T(gah[i]);
    const torch::Tensor& gb = T(gbh[i]);
    if (ga.dim() != 3 || gb.dim() != 3 || ga.size(1) != as[i].size(0) || ga.size(2) != as[i].size(1) ||
        gb.size(1) != bs[i].size(0) || gb.size(2) != bs[i].size(1) || ga.size(0) != gb.size(0) ||
        ga.scalar_type() != c10::ScalarType::Float || gb.scalar_type() != c10::ScalarType::Float) {
      throw std::invalid_argument("loraLinearRows: adapter " + std::to_string(i) + " has A " +
                                  c10::str(as[i].sizes()) + ", B " + c10::str(bs[i].sizes()) +
                                  " but row-gradient buffers " + c10::str(ga.sizes()) + ", " + c10::str(gb.sizes()) +
                                  " (want fp32 [rows, ...A] and [rows, ...B])");
    }
    meta.rowGradA.push_back(ga);
    meta.rowGradB.push_back(gb);
  }
  std::optional<torch::Tensor> bias = lorapar::optT(biasH);
  torch::Tensor y = LoraRowsFn::apply(T(xh), T(wh), bias, at::TensorList(as), at::TensorList(bs), meta);
  return H(y);
  LP_CATCH(env, 0)
}
