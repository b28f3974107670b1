// LoRA-PAR JNI: pointwise arithmetic, comparisons, logic and reductions.
#include "lorapar_jni.h"

using lorapar::H;
using lorapar::T;

// ---- binary arithmetic (new tensor / in-place on the first operand) ----
LP_BINARY(torchAdd, x.add(y))
LP_INPLACE2(torchAddi, x.add_(y))
LP_BINARY(torchSub, x.sub(y))
LP_INPLACE2(torchSubi, x.sub_(y))
LP_BINARY(torchMul, x.mul(y))
LP_INPLACE2(torchMuli, x.mul_(y))
LP_BINARY(torchTrueDivide, x.div(y))
LP_INPLACE2(torchTrueDividei, x.div_(y))
LP_BINARY(torchRemainder, x.remainder(y))
LP_INPLACE2(torchRemainderi, x.remainder_(y))
LP_BINARY(torchPow, x.pow(y))
LP_INPLACE2(torchPowi, x.pow_(y))
LP_BINARY(torchMaximum, torch::maximum(x, y))
LP_BINARY(torchMinimum, torch::minimum(x, y))
LP_BINARY(torchAtan2, x.atan2(y))
LP_BINARY(torchXLogY, torch::xlogy(x, y))
LP_BINARY(torchMatmul, x.matmul(y))
LP_BINARY(torchBmm, x.bmm(y))
LP_BINARY(torchDot, x.dot(y))

// ---- logic and comparison ----
LP_BINARY(torchLogicalAnd, torch::logical_and(x, y))
LP_BINARY(torchLogicalOr, torch::logical_or(x, y))
LP_BINARY(torchLogicalXor, torch::logical_xor(x, y))
LP_UNARY(torchLogicalNot, torch::logical_not(t))
LP_BINARY(torchEq, x.eq(y))
LP_BINARY(torchNeq, x.ne(y))
LP_BINARY(torchGt, x.gt(y))
LP_BINARY(torchGte, x.ge(y))
LP_BINARY(torchLt, x.lt(y))
LP_BINARY(torchLte, x.le(y))
LP_UNARY(torchIsNaN, t.isnan())
LP_UNARY(torchIsInf, t.isinf())

LP_FN(jlong, torchWhere)(JNIEnv* env, jobject, jlong cond, jlong a, jlong b) {
  LP_TRY return H(torch::where(T(cond), T(a), T(b)));
  LP_CATCH(env, 0)
}

// ---- unary ----
LP_UNARY(torchSign, t.sign())
LP_FN(void, torchSigni)(JNIEnv* env, jobject, jlong h) {
  LP_TRY T(h).sign_();
  LP_CATCH(env, LP_VOID)
}
LP_UNARY(torchNeg, t.neg())
LP_FN(void, torchNegi)(JNIEnv* env, jobject, jlong h) {
  LP_TRY T(h).neg_();
  LP_CATCH(env, LP_VOID)
}
LP_UNARY(torchAbs, t.abs())
LP_UNARY(torchSquare, t.square())
LP_UNARY(torchFloor, t.floor())
LP_UNARY(torchCeil, t.ceil())
LP_UNARY(torchRound, t.round())
LP_UNARY(torchTrunc, t.trunc())
LP_UNARY(torchExp, t.exp())
LP_UNARY(torchLgamma, t.lgamma())
LP_UNARY(torchLog, t.log())
LP_UNARY(torchLog10, t.log10())
LP_UNARY(torchLog2, t.log2())
LP_UNARY(torchSin, t.sin())
LP_UNARY(torchCos, t.cos())
LP_UNARY(torchTan, t.tan())
LP_UNARY(torchASin, t.asin())
LP_UNARY(torchAcos, t.acos())
LP_UNARY(torchAtan, t.atan())
LP_UNARY(torchSqrt, t.sqrt())
LP_UNARY(torchSinh, t.sinh())
LP_UNARY(torchCosh, t.cosh())
LP_UNARY(torchTanh, t.tanh())
LP_UNARY(torchSigmoid, t.sigmoid())
LP_UNARY(torchErfinv, t.erfinv())
LP_UNARY(torchErf, t.erf())
LP_UNARY(torchInverse, torch::linalg_inv(t))

LP_FN(jlong, torchClamp)(JNIEnv* env, jobject, jlong h, jlong minH, jlong maxH) {
  LP_TRY auto& t = T(h);
  std::optional<c10::Scalar> lo;
  std::optional<c10::Scalar> hi;
  if (minH != 0) lo = T(minH).item();
  if (maxH != 0) hi = T(maxH).item();
  return H(t.clamp(lo, hi));
  LP_CATCH(env, 0)
}

// ---- reductions ----
LP_UNARY(torchMax__J, t.max())
LP_FN(jlong, torchMax__JJZ)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY return H(std::get<0>(T(h).max(dim, keep == JNI_TRUE)));
  LP_CATCH(env, 0)
}
LP_UNARY(torchMin__J, t.min())
LP_FN(jlong, torchMin__JJZ)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY return H(std::get<0>(T(h).min(dim, keep == JNI_TRUE)));
  LP_CATCH(env, 0)
}
LP_UNARY(torchMean__J, t.mean())
LP_FN(jlong, torchMean__JJZ)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY std::vector<int64_t> dims{dim};
  return H(T(h).mean(at::IntArrayRef(dims), keep == JNI_TRUE));
  LP_CATCH(env, 0)
}
LP_UNARY(torchSum__J, t.sum())
LP_FN(jlong, torchSum__J_3JZ)(JNIEnv* env, jobject, jlong h, jlongArray dims, jboolean keep) {
  LP_TRY auto d = lorapar::longs(env, dims);
  return H(T(h).sum(at::IntArrayRef(d), keep == JNI_TRUE));
  LP_CATCH(env, 0)
}
LP_UNARY(torchProd__J, t.prod())
LP_FN(jlong, torchProd__JJZ)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY return H(T(h).prod(dim, keep == JNI_TRUE));
  LP_CATCH(env, 0)
}
LP_FN(jlong, torchCumSum)(JNIEnv* env, jobject, jlong h, jlong dim) {
  LP_TRY return H(T(h).cumsum(dim));
  LP_CATCH(env, 0)
}
LP_FN(jlong, torchCumProd)(JNIEnv* env, jobject, jlong h, jlong dim, jint dtype) {
  LP_TRY auto& t = T(h);
  if (dtype < 0) {
    return H(t.cumprod(dim));
  }
  return H(t.cumprod(dim, lorapar::toScalarType(dtype)));
  LP_CATCH(env, 0)
}
LP_UNARY(torchArgMax__J, t.argmax())
LP_FN(jlong, torchArgMax__JJZ)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY return H(T(h).argmax(dim, keep == JNI_TRUE));
  LP_CATCH(env, 0)
}
LP_UNARY(torchArgMin__J, t.argmin())
LP_FN(jlong, torchArgMin__JJZ)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY return H(T(h).argmin(dim, keep == JNI_TRUE));
  LP_CATCH(env, 0)
}
LP_UNARY(torchAll, t.all())
LP_UNARY(torchAny, t.any())
LP_UNARY(torchNone, t.any().logical_not())

LP_FN(jlongArray, torchMedian)(JNIEnv* env, jobject, jlong h, jlong dim, jboolean keep) {
  LP_TRY auto r = T(h).median(dim, keep == JNI_TRUE);
  return lorapar::toHandles(env, {std::get<0>(r), std::get<1>(r)});
  LP_CATCH(env, nullptr)
}

LP_FN(jlong, torchQuantile)(JNIEnv* env, jobject, jlong h, jfloat q, jlong dim, jboolean keep) {
  LP_TRY return H(T(h).quantile(static_cast<double>(q), dim, keep == JNI_TRUE));
  LP_CATCH(env, 0)
}

// numpy-style norm: one axis (or none) -> vector norm of order ord; two axes -> matrix norm.
LP_FN(jlong, torchNorm)(JNIEnv* env, jobject, jlong h, jint ord, jlongArray axes, jboolean keep) {
  LP_TRY auto& t = T(h);
  auto dims = lorapar::longs(env, axes);
  bool k = keep == JNI_TRUE;
  if (dims.size() == 2) {
    return H(torch::linalg_matrix_norm(t, c10::Scalar(static_cast<int64_t>(ord)), at::IntArrayRef(dims), k));
  }
  if (dims.empty()) {
    return H(torch::linalg_vector_norm(t, c10::Scalar(static_cast<int64_t>(ord)), std::nullopt, k));
  }
  return H(torch::linalg_vector_norm(t, c10::Scalar(static_cast<int64_t>(ord)), at::IntArrayRef(dims), k));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchDiff)(JNIEnv* env, jobject, jlong h, jint n, jint dim) {
  LP_TRY return H(T(h).diff(n, dim));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchSoftmax)(JNIEnv* env, jobject, jlong h, jlong dim, jint dtype) {
  LP_TRY return H(T(h).softmax(dim, lorapar::toScalarType(dtype)));
  LP_CATCH(env, 0)
}

LP_FN(jlong, torchLogSoftmax)(JNIEnv* env, jobject, jlong h, jlong dim, jint dtype) {
  LP_TRY return H(T(h).log_softmax(dim, lorapar::toScalarType(dtype)));
  LP_CATCH(env, 0)
}
