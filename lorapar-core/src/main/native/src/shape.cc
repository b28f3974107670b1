// LoRA-PAR JNI: shape manipulation, indexing, gather/scatter, sorting, joining and splitting.
#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;
namespace idx = at::indexing;

namespace {

using IndexList = std::vector<idx::TensorIndex>;

IndexList& IL(jlong h) {
  if (h == 0) {
    throw std::invalid_argument("null index handle");
  }
  return *reinterpret_cast<IndexList*>(h);
}

IndexList fullSlices(JNIEnv* env, jlongArray minA, jlongArray maxA, jlongArray stepA) {
  auto mins = lorapar::longs(env, minA);
  auto maxs = lorapar::longs(env, maxA);
  auto steps = lorapar::longs(env, stepA);
  IndexList out;
  for (size_t i = 0; i < mins.size(); ++i) {
    std::optional<int64_t> lo = mins[i];
    std::optional<int64_t> hi = maxs[i];
    std::optional<int64_t> st = i < steps.size() ? steps[i] : 1;
    out.emplace_back(idx::Slice(lo, hi, st));
  }
  return out;
}

}  // namespace

LP_FN(jlong, torchReshape)(JNIEnv* env, jobject, jlong h, jlongArray shape) {
  LP_TRY return H(T(h).reshape(lorapar::longs(env, shape)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchExpand)(JNIEnv* env, jobject, jlong h, jlongArray shape) {
  LP_TRY return H(T(h).expand(lorapar::longs(env, shape)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchPermute)(JNIEnv* env, jobject, jlong h, jlongArray dims) {
  LP_TRY return H(T(h).permute(lorapar::longs(env, dims)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchFlip)(JNIEnv* env, jobject, jlong h, jlongArray dims) {
  LP_TRY return H(T(h).flip(lorapar::longs(env, dims)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchRot90)(JNIEnv* env, jobject, jlong h, jlong k, jlongArray dims) {
  LP_TRY return H(T(h).rot90(k, lorapar::longs(env, dims)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchTranspose)(JNIEnv* env, jobject, jlong h, jlong a, jlong b) {
  LP_TRY return H(T(h).transpose(a, b));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchFlatten)(JNIEnv* env, jobject, jlong h, jlong start, jlong end) {
  LP_TRY return H(T(h).flatten(start, end));
  LP_CATCH(env, 0)
}

LP_UNARY(torchSqueeze__J, t.squeeze())
LP_FN(jlong, torchSqueeze__JJ)(JNIEnv* env, jobject, jlong h, jlong dim) {
  LP_TRY return H(T(h).squeeze(dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchUnsqueeze)(JNIEnv* env, jobject, jlong h, jlong dim) {
  LP_TRY return H(T(h).unsqueeze(dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchRepeat)(JNIEnv* env, jobject, jlong h, jlongArray repeats) {
  LP_TRY return H(T(h).repeat(lorapar::longs(env, repeats)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchRepeatInterleave)(JNIEnv* env, jobject, jlong h, jlong repeats, jlong dim) {
  LP_TRY return H(T(h).repeat_interleave(repeats, dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchPad)(JNIEnv* env, jobject, jlong h, jlongArray pad, jdouble value) {
  LP_TRY return H(torch::constant_pad_nd(T(h), lorapar::longs(env, pad), value));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchDiagonal)(JNIEnv* env, jobject, jlong h, jlong offset, jlong d1, jlong d2) {
  LP_TRY return H(T(h).diagonal(offset, d1, d2));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchSlice)(JNIEnv* env, jobject, jlong h, jlong dim, jlong start, jlong stop,
                         jlong step) {
  LP_TRY return H(T(h).slice(dim, start, stop, step));
  LP_CATCH(env, 0)
}

// ---- joining / splitting ----

LP_FN(jlong, torchStack)(JNIEnv* env, jobject, jlongArray handles, jlong dim) {
  LP_TRY return H(torch::stack(lorapar::fromHandles(env, handles), dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchCat)(JNIEnv* env, jobject, jlongArray handles, jlong dim) {
  LP_TRY return H(torch::cat(lorapar::fromHandles(env, handles), dim));
  LP_CATCH(env, 0)
}

LP_FN(jlongArray, torchSplit__JJJ)(JNIEnv* env, jobject, jlong h, jlong size, jlong dim) {
  LP_TRY return lorapar::toHandles(env, T(h).split(size, dim));
  LP_CATCH(env, nullptr)
}

// DJL passes section sizes here (PtNDArray.split converts split points to sizes).
LP_FN(jlongArray, torchSplit__J_3JJ)(JNIEnv* env, jobject, jlong h, jlongArray sizes, jlong dim) {
  LP_TRY auto s = lorapar::longs(env, sizes);
  return lorapar::toHandles(env, T(h).split_with_sizes(at::IntArrayRef(s), dim));
  LP_CATCH(env, nullptr)
}

LP_FN(jlongArray, torchUnique)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean sorted,
                               jboolean returnInverse, jboolean returnCounts) {
  LP_TRY auto& t = T(h);
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> r;
  if (dim == -1) {
    r = torch::_unique2(t, sorted == JNI_TRUE, returnInverse == JNI_TRUE, returnCounts == JNI_TRUE);
  } else {
    r = torch::unique_dim(t, dim, sorted == JNI_TRUE, returnInverse == JNI_TRUE,
                          returnCounts == JNI_TRUE);
  }
  return lorapar::toHandles(env, {std::get<0>(r), std::get<1>(r), std::get<2>(r)});
  LP_CATCH(env, nullptr)
}

// ---- sorting ----

LP_FN(jlong, torchSort)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean descending) {
  LP_TRY return H(std::get<0>(T(h).sort(dim, descending == JNI_TRUE)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchArgSort)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean descending) {
  LP_TRY return H(T(h).argsort(dim, descending == JNI_TRUE));
  LP_CATCH(env, 0)
}

LP_FN(jlongArray, torchTopK)(JNIEnv* env, jobject, jlong h, jlong k, jlong dim, jboolean largest,
                             jboolean sorted) {
  LP_TRY auto r = T(h).topk(k, dim, largest == JNI_TRUE, sorted == JNI_TRUE);
  return lorapar::toHandles(env, {std::get<0>(r), std::get<1>(r)});
  LP_CATCH(env, nullptr)
}

// ---- basic and advanced indexing ----

LP_FN(jlong, torchIndex)(JNIEnv* env, jobject, jlong h, jlongArray minA, jlongArray maxA,
                         jlongArray stepA) {
  LP_TRY auto indices = fullSlices(env, minA, maxA, stepA);
  return H(T(h).index(indices));
  LP_CATCH(env, 0)
}

LP_FN(void, torchIndexPut)(JNIEnv* env, jobject, jlong h, jlong valueH, jlongArray minA,
                           jlongArray maxA, jlongArray stepA) {
  LP_TRY auto indices = fullSlices(env, minA, maxA, stepA);
  auto& t = T(h);
  t.index_put_(indices, T(valueH).to(t.device(), t.scalar_type()));
  LP_CATCH(env, LP_VOID)
}

LP_FN(jlong, torchIndexInit)(JNIEnv* env, jobject, jint size) {
  LP_TRY auto* list = new IndexList();
  list->reserve(static_cast<size_t>(size < 0 ? 0 : size) + 1);
  return reinterpret_cast<jlong>(list);
  LP_CATCH(env, 0)
}

LP_FN(void, torchDeleteIndex)(JNIEnv* env, jobject, jlong h) {
  LP_TRY delete reinterpret_cast<IndexList*>(h);
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchIndexAppendNoneEllipsis)(JNIEnv* env, jobject, jlong h, jboolean isEllipsis) {
  LP_TRY if (isEllipsis == JNI_TRUE) {
    IL(h).emplace_back(idx::Ellipsis);
  } else {
    IL(h).emplace_back(idx::None);
  }
  LP_CATCH(env, LP_VOID)
}

// nullSliceBinary: bit 1 set = min is absent, bit 0 set = max is absent.
LP_FN(void, torchIndexAppendSlice)(JNIEnv* env, jobject, jlong h, jlong min, jlong max, jlong step,
                                   jint nullSliceBinary) {
  LP_TRY std::optional<int64_t> lo;
  std::optional<int64_t> hi;
  if ((nullSliceBinary & 2) == 0) lo = min;
  if ((nullSliceBinary & 1) == 0) hi = max;
  std::optional<int64_t> st = step;
  IL(h).emplace_back(idx::Slice(lo, hi, st));
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchIndexAppendFixed)(JNIEnv* env, jobject, jlong h, jlong index) {
  LP_TRY IL(h).emplace_back(static_cast<int64_t>(index));
  LP_CATCH(env, LP_VOID)
}

LP_FN(void, torchIndexAppendArray)(JNIEnv* env, jobject, jlong h, jlong arrayH) {
  LP_TRY IL(h).emplace_back(T(arrayH));
  LP_CATCH(env, LP_VOID)
}

LP_FN(jlong, torchIndexAdvGet)(JNIEnv* env, jobject, jlong h, jlong indexH) {
  LP_TRY return H(T(h).index(IL(indexH)));
  LP_CATCH(env, 0)
}

LP_FN(void, torchIndexAdvPut)(JNIEnv* env, jobject, jlong h, jlong indexH, jlong valueH) {
  LP_TRY auto& t = T(h);
  t.index_put_(IL(indexH), T(valueH).to(t.device(), t.scalar_type()));
  LP_CATCH(env, LP_VOID)
}

LP_FN(jlong, torchGather)(JNIEnv* env, jobject, jlong h, jlong indexH, jlong dim,
                          jboolean sparseGrad) {
  LP_TRY return H(T(h).gather(dim, T(indexH), sparseGrad == JNI_TRUE));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchTake)(JNIEnv* env, jobject, jlong h, jlong indexH) {
  LP_TRY return H(T(h).take(T(indexH)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchPut)(JNIEnv* env, jobject, jlong h, jlong indexH, jlong valueH) {
  LP_TRY auto& t = T(h);
  auto v = T(valueH).to(t.device(), t.scalar_type());
  return H(t.put(T(indexH), v));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchScatter)(JNIEnv* env, jobject, jlong h, jlong indexH, jlong valueH, jint dim) {
  LP_TRY auto& t = T(h);
  auto v = T(valueH).to(t.device(), t.scalar_type());
  return H(t.scatter(dim, T(indexH), v));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchMaskedSelect)(JNIEnv* env, jobject, jlong h, jlong maskH) {
  LP_TRY return H(T(h).masked_select(T(maskH)));
  LP_CATCH(env, 0)
}

LP_FN(void, torchMaskedPut)(JNIEnv* env, jobject, jlong h, jlong valueH, jlong maskH) {
  LP_TRY auto& t = T(h);
  auto v = T(valueH).to(t.device(), t.scalar_type());
  IndexList indices;
  indices.emplace_back(T(maskH));
  t.index_put_(indices, v);
  LP_CATCH(env, LP_VOID)
}

LP_UNARY(torchNonZeros, t.nonzero())

LP_FN(jlong, torchNNOneHot)(JNIEnv* env, jobject, jlong h, jint depth) {
  LP_TRY return H(torch::one_hot(T(h), depth));
  LP_CATCH(env, 0)
}
