// q4 scale search over many blocks at once (quantize_blocks_q4), one block per double lane. Compiled once per
// instruction set by Highway's foreach_target.
//
// Bitwise the same as quantize_block (quantize.cc), the scalar reference, because each lane runs its block's own
// operations in the reference's order: the f32 scales and IEEE divisions, round to nearest even, the f16 roundings of
// the candidate scales (done exactly, in integer and f32 steps), and each candidate's squared error summed in double
// from column 0 up. Putting blocks, not columns, in the lanes is what keeps those sums unsplit. The reference may
// stop a candidate's sum early, but a full sum is never below a partial one, so the winner is the same.

// AVX3_DL is opt-in in Highway 1.0; CMakeLists.txt enables it for every file, so that every instruction set a kernel
// test selects has an entry here.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>

#include "whale/kernels/quantize.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/quantize_q4_simd.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace whale {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes hold blocks: a double vector's worth, with f32 and 32-bit integer vectors of as many lanes.
using DD = hn::ScalableTag<double>;
using DF = hn::Rebind<float, DD>;
using DI = hn::Rebind<int32_t, DD>;
using DU = hn::Rebind<uint32_t, DD>;
using VD = hn::Vec<DD>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;
constexpr size_t kMaxQ4Lanes = HWY_MAX_BYTES / sizeof(double);
constexpr int kQ4Candidates = static_cast<int>(std::size(kQ4ScaleFactors));

// f32_to_f16 of finite x >= 0 as u32 lanes: the normal range by dtype.cc's integer rounding; below 2^-14, x + 0.5
// rounds x to a multiple of 2^-24 (the f32 spacing in [0.5, 1)) to nearest even, which is the f16 subnormal
// rounding; from 65520 on, infinity.
VU Q4F32ToF16(VF x) {
  const DU du;
  const DI di;
  const VU ax = hn::BitCast(du, x);
  const VU h = hn::Sub(ax, hn::Set(du, 0x38000000u));
  const VU normal =
      hn::ShiftRight<13>(hn::Add(hn::Add(h, hn::Set(du, 0xFFFu)), hn::And(hn::ShiftRight<13>(h), hn::Set(du, 1u))));
  const VU subnormal = hn::Sub(hn::BitCast(du, hn::Add(x, hn::Set(DF(), 0.5f))), hn::Set(du, 0x3F000000u));
  const VU r = hn::IfThenElse(hn::RebindMask(du, hn::Lt(hn::BitCast(di, ax), hn::Set(di, 0x38800000))), subnormal,
                              normal);
  return hn::IfThenElse(hn::RebindMask(du, hn::Lt(hn::BitCast(di, ax), hn::Set(di, 0x477FF000))), r,
                        hn::Set(du, 0x7C00u));
}

// f16_to_f32 of h in [0, 0x7C00) (u32 lanes), exact.
VF Q4F16ToF32(VU h) {
  const DF df;
  const DU du;
  const DI di;
  const VF normal = hn::BitCast(df, hn::Add(hn::ShiftLeft<13>(h), hn::Set(du, 0x38000000u)));
  const VF subnormal = hn::Mul(hn::ConvertTo(df, hn::BitCast(di, h)), hn::Set(df, 0x1p-24f));
  return hn::IfThenElse(hn::RebindMask(df, hn::Lt(hn::BitCast(di, h), hn::Set(di, 0x400))), subnormal, normal);
}

// Squared errors e[k] = Σ_j (w_j − s_k·c_j)², c_j = clamp(rint(w_j / s_k), −8, 7), of every lane's block for K
// candidates at once (independent sums, so that their additions overlap). Column j of the blocks is at wf / wd +
// j·lanes; div[k] is s_k, or +inf where s_k is 0 (w / inf = ±0: code 0, so e = Σ w² as in the reference, where 0 / 0
// would give a NaN code that poisons the sum on instruction sets whose Max passes NaN on).
template <int K>
HWY_INLINE void Q4SquaredErrors(const float* wf, const double* wd, const VF* div, const VD* s, VD* e) {
  const DD dd;
  const DF df;
  const size_t lanes = hn::Lanes(dd);
  const VF lo = hn::Set(df, -8.0f), hi = hn::Set(df, 7.0f);
  for (int k = 0; k < K; ++k) e[k] = hn::Zero(dd);
  for (int j = 0; j < kQuantBlock; ++j) {
    const VF w = hn::Load(df, wf + j * lanes);
    const VD wj = hn::Load(dd, wd + j * lanes);
    for (int k = 0; k < K; ++k) {
      const VF c = hn::Min(hn::Max(hn::Round(hn::Div(w, div[k])), lo), hi);
      const VD d = hn::NegMulAdd(s[k], hn::PromoteTo(dd, c), wj);  // s·c is exact: one rounding, fused or not
      e[k] = hn::Add(e[k], hn::Mul(d, d));
    }
  }
}

// Codes of one block for its chosen scale s, as the reference computes them (all 0 where s is 0).
void Q4Codes(const float* w, float s, int8_t* q) {
  if (s == 0.0f) {
    std::memset(q, 0, kQuantBlock);
    return;
  }
  const hn::CappedTag<float, kQuantBlock> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const auto vs = hn::Set(df, s), lo = hn::Set(df, -8.0f), hi = hn::Set(df, 7.0f);
  for (size_t j = 0; j < kQuantBlock; j += hn::Lanes(df)) {
    const auto c = hn::Min(hn::Max(hn::Round(hn::Div(hn::LoadU(df, w + j), vs)), lo), hi);
    hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, c)), d8, q + j);
  }
}

// quantize_blocks_q4 on this instruction set.
int64_t QuantizeQ4Blocks(const float* w, int64_t n, int8_t* q, uint16_t* scales) {
  // Candidates per pass over the columns after the default: three independent sums keep the adders busy (AVX-512 on
  // Zen 4: 148 ns a block one at a time, 121 ns three at a time).
  constexpr int kGroup = 3;
  static_assert((kQ4Candidates - 1) % kGroup == 0);
  const DD dd;
  const DF df;
  const DI di;
  const size_t lanes = hn::Lanes(dd);
  HWY_ALIGN float wf[kQuantBlock * kMaxQ4Lanes];
  HWY_ALIGN double wd[kQuantBlock * kMaxQ4Lanes];
  HWY_ALIGN double chosen[kMaxQ4Lanes];
  for (int64_t b0 = 0; b0 < n; b0 += static_cast<int64_t>(lanes)) {
    const size_t nb = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(lanes), n - b0));
    const float* wb = w + b0 * kQuantBlock;
    // Columns across blocks; lanes past nb hold zero blocks, whose results are dropped.
    for (size_t b = 0; b < lanes; ++b)
      for (int j = 0; j < kQuantBlock; ++j) wf[j * lanes + b] = b < nb ? wb[b * kQuantBlock + j] : 0.0f;
    // absmax as the largest |w| bit pattern: the same maximum for finite values, and above FLT_MAX's for inf / NaN.
    auto amax_bits = hn::Zero(di);
    VF wmax = hn::Zero(df);
    for (int j = 0; j < kQuantBlock; ++j) {
      const VF v = hn::Load(df, wf + j * lanes);
      hn::Store(hn::PromoteTo(dd, v), dd, wd + j * lanes);
      amax_bits = hn::Max(amax_bits, hn::And(hn::BitCast(di, v), hn::Set(di, 0x7FFFFFFF)));
      wmax = hn::Max(wmax, v);
    }
    const VF amax = hn::BitCast(df, amax_bits);
    const VF s32 =
        hn::IfThenElse(hn::Eq(wmax, amax), hn::Div(amax, hn::Set(df, 7.0f)), hn::Div(amax, hn::Set(df, 8.0f)));
    // Blocks quantize_block rejects (a non-finite value, or a default scale at or past f16 infinity) stop the run
    // here; the blocks before them in this batch go to the reference.
    const auto rejected = hn::Or(hn::Gt(amax_bits, hn::Set(di, 0x7F7FFFFF)),
                                 hn::Gt(hn::BitCast(di, s32), hn::Set(di, 0x477FEFFF)));
    if (!hn::AllFalse(di, rejected)) {
      const int64_t first = b0 + hn::FindFirstTrue(di, rejected);
      for (int64_t b = b0; b < first; ++b)
        scales[b] = quantize_block(QuantType::Q4, w + b * kQuantBlock, q + b * kQuantBlock);
      return first;
    }

    // Candidate k's scale as the divisor (+inf where it is 0) and as the double factor (0 where the reference skips
    // it: the f16 rounding is 0 or infinity).
    const auto candidate = [&](int k, VF& div, VD& s) {
      const VU h = Q4F32ToF16(hn::Mul(s32, hn::Set(df, kQ4ScaleFactors[k])));
      const auto finite = hn::RebindMask(df, hn::Lt(hn::BitCast(di, h), hn::Set(di, 0x7C00)));
      const VF sf = hn::IfThenElseZero(finite, Q4F16ToF32(h));
      div = hn::IfThenElse(hn::Eq(sf, hn::Zero(df)), hn::Set(df, std::numeric_limits<float>::infinity()), sf);
      s = hn::PromoteTo(dd, sf);
    };
    VF div[kGroup];
    VD s[kGroup], e[kGroup];
    candidate(0, div[0], s[0]);
    Q4SquaredErrors<1>(wf, wd, div, s, e);
    VD best = e[0], best_s = s[0];
    for (int k0 = 1; k0 < kQ4Candidates; k0 += kGroup) {
      for (int i = 0; i < kGroup; ++i) candidate(k0 + i, div[i], s[i]);
      Q4SquaredErrors<kGroup>(wf, wd, div, s, e);
      for (int i = 0; i < kGroup; ++i) {  // in candidate order: the first of equal errors stays
        const auto wins = hn::And(hn::Ne(s[i], hn::Zero(dd)), hn::Lt(e[i], best));
        best = hn::IfThenElse(wins, e[i], best);
        best_s = hn::IfThenElse(wins, s[i], best_s);
      }
    }
    hn::Store(best_s, dd, chosen);
    for (size_t b = 0; b < nb; ++b) {
      const float sb = static_cast<float>(chosen[b]);  // an f16 value, so f32_to_f16 gives back its bits
      scales[b0 + b] = f32_to_f16(sb);
      Q4Codes(wb + b * kQuantBlock, sb, q + (b0 + b) * kQuantBlock);
    }
  }
  return n;
}

}  // namespace HWY_NAMESPACE
}  // namespace whale
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(QuantizeQ4Blocks);

int64_t quantize_blocks_q4(const float* w, int64_t n, int8_t* q, uint16_t* scales) {
  return HWY_DYNAMIC_DISPATCH(QuantizeQ4Blocks)(w, n, q, scales);
}

}  // namespace whale
#endif  // HWY_ONCE
