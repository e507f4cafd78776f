// The NF4 CUDA kernels (ditty/cuda/nf4.h) against their CPU twins (ditty/nf4.h), all bitwise:
// dequantized rows (float: the CPU's values; bf16: those rounded to nearest even) and quantized
// bytes (packed codes, absmax, 8-bit absmax, nested absmax, offset), with and without double
// quantization, odd sizes and row ranges (odd flat starts take the one-value path), blocksizes
// that are and are not multiples of 8, float and bf16 inputs; every output bitwise equal under
// every schedule.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../../cpu/nf4_codebook.h"
#include "ditty/cuda/nf4.h"
#include "ditty/cuda/testing.h"
#include "ditty/nf4.h"

namespace t = ditty::cuda::testing;
using bf16 = __nv_bfloat16;

namespace {

std::vector<float> dynamic_map() {
  const auto& m = ditty::cpu::nf4_detail::dynamic_map();
  return std::vector<float>(m.begin(), m.end());
}

// Values that exercise the code boundaries: a block whose absmax is exactly 1 (so x * (1/absmax)
// is x) holding every NF4 threshold and its float neighbours, an all-zero block, a block with a
// NaN, plus normal values with a few outliers.
std::vector<float> weights(int64_t n, int32_t blocksize, bool specials, bool nan, uint64_t seed) {
  std::vector<float> x = t::normal(n, 0.02f, seed);
  t::Rng r(seed + 1);
  for (int64_t i = 0; i < n / 97; i++) x[r.below(n)] *= 40.0f;
  if (!specials || n < 3 * blocksize) return x;
  const auto& thr = ditty::cpu::nf4_detail::nf4_thresholds();
  int64_t i = 0;
  x[i++] = 1.0f;
  for (float th : thr) {
    for (float v : {th, std::nextafter(th, -2.0f), std::nextafter(th, 2.0f)}) {
      if (i < blocksize) x[i++] = v;
    }
  }
  for (; i < blocksize; i++) x[i] = std::clamp(x[i], -1.0f, 1.0f);
  for (int64_t j = blocksize; j < 2 * blocksize; j++) x[j] = 0.0f;
  if (nan) x[2 * blocksize + 1] = NAN;
  return x;
}

struct Quantized {
  std::vector<uint8_t> packed, absmax_q;
  std::vector<float> absmax, nested_absmax;
  float offset = 0.0f;
};

Quantized cpu_quantize(const std::vector<float>& x, int32_t bs, bool dq, int32_t nbs) {
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t blocks = (n + bs - 1) / bs, nested = (blocks + nbs - 1) / nbs;
  Quantized q;
  q.packed.resize((n + 1) / 2);
  q.absmax.resize(blocks);
  if (dq) {
    q.absmax_q.resize(blocks);
    q.nested_absmax.resize(nested);
  }
  ditty::cpu::nf4_quantize(x.data(), n, bs, dq, nbs, q.packed.data(), dq ? nullptr : q.absmax.data(),
                           dq ? q.absmax_q.data() : nullptr, dq ? q.nested_absmax.data() : nullptr, &q.offset);
  return q;
}

// ---- dequantize ----

struct DeviceQuant {
  t::DeviceArray<uint8_t> packed, absmax_q;
  t::DeviceArray<float> absmax, nested_absmax, map, offset;
  ditty::cuda::Nf4DeviceWeight w;
};

DeviceQuant upload(const Quantized& q, int64_t rows, int64_t cols, int32_t bs, bool dq, int32_t nbs) {
  DeviceQuant d;
  d.packed = t::upload(q.packed);
  d.w.packed = d.packed.get();
  d.w.rows = rows;
  d.w.cols = cols;
  d.w.blocksize = bs;
  d.w.nested_blocksize = nbs;
  if (dq) {
    d.absmax_q = t::upload(q.absmax_q);
    d.nested_absmax = t::upload(q.nested_absmax);
    d.map = t::upload(dynamic_map());
    d.offset = t::upload(std::vector<float>{q.offset});
    d.w.absmax_q = d.absmax_q.get();
    d.w.nested_absmax = d.nested_absmax.get();
    d.w.nested_map = d.map.get();
    d.w.offset = d.offset.get();
  } else {
    d.absmax = t::upload(q.absmax);
    d.w.absmax = d.absmax.get();
  }
  return d;
}

ditty::cpu::Nf4Weight cpu_weight(const Quantized& q, const std::vector<float>& map, int64_t rows, int64_t cols,
                                 int32_t bs, bool dq, int32_t nbs) {
  ditty::cpu::Nf4Weight w;
  w.packed = q.packed.data();
  w.rows = rows;
  w.cols = cols;
  w.blocksize = bs;
  w.nested_blocksize = nbs;
  if (dq) {
    w.absmax_q = q.absmax_q.data();
    w.nested_absmax = q.nested_absmax.data();
    w.nested_map = map.data();
    w.offset = q.offset;
  } else {
    w.absmax = q.absmax.data();
  }
  return w;
}

template <class O>
void dequantize_case(int64_t rows, int64_t cols, int32_t bs, bool dq, int32_t nbs, int64_t r0, int64_t r1,
                     uint64_t seed) {
  const std::string what = std::string("dequantize ") + t::type_name<O>() + " " +
                           std::to_string(rows) + "x" + std::to_string(cols) + " bs" + std::to_string(bs) +
                           (dq ? " dq nbs" + std::to_string(nbs) : "") + " rows [" + std::to_string(r0) + ", " +
                           std::to_string(r1) + ")";
  const auto x = weights(rows * cols, bs, true, !dq, seed);
  const Quantized q = cpu_quantize(x, bs, dq, nbs);
  const auto map = dynamic_map();
  std::vector<float> want((r1 - r0) * cols);
  ditty::cpu::nf4_dequantize_rows(cpu_weight(q, map, rows, cols, bs, dq, nbs), r0, r1, want.data());
  DeviceQuant d = upload(q, rows, cols, bs, dq, nbs);
  auto out = t::device_array<O>(want.size());
  const auto got = t::same_under_all_schedules(what, [&] {
    ditty::cuda::nf4_dequantize_rows(d.w, r0, r1, out.get(), nullptr);
    return t::download(out);
  });
  t::expect_bits(what, got, want);
}

struct DqShape {
  int64_t rows, cols;
  int32_t bs;
};

template <class O>
void dequantize_cases() {
  const std::vector<DqShape> shapes = t::quick()
                                          ? std::vector<DqShape>{{1, 64, 64}, {7, 33, 64}, {5, 96, 40}}
                                          : std::vector<DqShape>{{1, 64, 64},  {7, 33, 64},   {33, 128, 64},
                                                                 {5, 96, 40},  {3, 1031, 128}, {9, 256, 256},
                                                                 {4, 300, 2},   {5, 96, 12}};
  uint64_t seed = 10;
  for (const DqShape& s : shapes) {
    for (bool dq : {false, true}) {
      const int32_t nbs = 4;  // several nested blocks even at these sizes
      dequantize_case<O>(s.rows, s.cols, s.bs, dq, nbs, 0, s.rows, seed++);
      if (s.rows > 2) dequantize_case<O>(s.rows, s.cols, s.bs, dq, nbs, 1, s.rows - 1, seed++);
    }
  }
  dequantize_case<O>(4, 1024, 64, true, 256, 0, 4, seed++);
}

DITTY_TEST(dequantize_f32) { dequantize_cases<float>(); }
DITTY_TEST(dequantize_bf16) { dequantize_cases<bf16>(); }

// ---- quantize ----

template <class S>
void quantize_case(int64_t n, int32_t bs, bool dq, int32_t nbs, uint64_t seed) {
  const std::string what = std::string("quantize ") + t::type_name<S>() + " n" +
                           std::to_string(n) + " bs" + std::to_string(bs) + (dq ? " dq nbs" + std::to_string(nbs) : "");
  // NaN only without double quant (with it a NaN absmax would make the offset NaN)
  std::vector<float> x = weights(n, bs, true, !dq, seed);
  if constexpr (!std::is_same_v<S, float>) x = t::to_float(t::to_bf16(x));
  const Quantized want = cpu_quantize(x, bs, dq, nbs);
  const int64_t blocks = (n + bs - 1) / bs, nested = (blocks + nbs - 1) / nbs;
  std::vector<S> xs;
  if constexpr (std::is_same_v<S, float>) {
    xs = x;
  } else {
    xs = t::to_bf16(x);
  }
  auto dx = t::upload(xs);
  auto packed = t::device_array<uint8_t>(want.packed.size());
  auto absmax = t::device_array<float>(blocks);
  auto absmax_q = t::device_array<uint8_t>(dq ? blocks : 0);
  auto nested_absmax = t::device_array<float>(dq ? nested : 0);
  auto offset = t::device_array<float>(1);
  auto map = t::upload(dynamic_map());
  const auto got = t::same_under_all_schedules(what, [&] {
    ditty::cuda::nf4_quantize(dx.get(), n, bs, dq, nbs, map.get(), packed.get(), absmax.get(), absmax_q.get(),
                              nested_absmax.get(), offset.get(), nullptr);
    return std::make_tuple(t::download(packed), dq ? std::vector<float>{} : t::download(absmax), t::download(absmax_q),
                           t::download(nested_absmax), t::download(offset));
  });
  auto check = [&](const char* part, const auto& g, const auto& w) {
    const long long i = t::first_bitwise_difference(g, w);
    DITTY_EXPECT(i < 0, what, ": ", part, " differs from the CPU at ", i, " of ", w.size());
  };
  check("packed", std::get<0>(got), want.packed);
  if (!dq) check("absmax", std::get<1>(got), want.absmax);
  check("absmax_q", std::get<2>(got), want.absmax_q);
  check("nested_absmax", std::get<3>(got), want.nested_absmax);
  check("offset", std::get<4>(got), std::vector<float>{want.offset});
}

template <class S>
void quantize_cases() {
  uint64_t seed = 500;
  const std::vector<int64_t> sizes =
      t::quick() ? std::vector<int64_t>{1, 7, 257, 3 * 64 + 5} : std::vector<int64_t>{1, 7, 33, 257, 1031, 300 * 64 + 17};
  for (int64_t n : sizes) {
    for (int32_t bs : {64, 128, 2}) {
      if (bs == 2 && n > 1031) continue;
      quantize_case<S>(n, bs, false, 256, seed++);
      quantize_case<S>(n, bs, true, 256, seed++);
      quantize_case<S>(n, bs, true, 3, seed++);
    }
  }
}

DITTY_TEST(quantize_f32) { quantize_cases<float>(); }
// more absmax values than the offset kernel stages at once (1024)
DITTY_TEST(quantize_many_blocks) {
  quantize_case<float>(t::quick() ? 64 * 1100 + 3 : 64 * 3000 + 3, 64, true, 256, 900);
}
DITTY_TEST(quantize_bf16) { quantize_cases<bf16>(); }

// quantized on the device, dequantized on the device: the CPU's values
DITTY_TEST(quantize_then_dequantize) {
  const int64_t rows = 33, cols = 192;
  const int32_t bs = 64, nbs = 256;
  const auto x = weights(rows * cols, bs, true, false, 77);
  const Quantized q = cpu_quantize(x, bs, true, nbs);
  const auto map = dynamic_map();
  std::vector<float> want(rows * cols);
  ditty::cpu::nf4_dequantize_rows(cpu_weight(q, map, rows, cols, bs, true, nbs), 0, rows, want.data());
  const int64_t n = rows * cols, blocks = n / bs;
  auto dx = t::upload(x);
  auto packed = t::device_array<uint8_t>(n / 2);
  auto absmax = t::device_array<float>(blocks);
  auto absmax_q = t::device_array<uint8_t>(blocks);
  auto nested_absmax = t::device_array<float>((blocks + nbs - 1) / nbs);
  auto offset = t::device_array<float>(1);
  auto dmap = t::upload(map);
  auto out = t::device_array<float>(n);
  ditty::cuda::Nf4DeviceWeight w;
  w.packed = packed.get();
  w.rows = rows;
  w.cols = cols;
  w.blocksize = bs;
  w.absmax_q = absmax_q.get();
  w.nested_absmax = nested_absmax.get();
  w.nested_map = dmap.get();
  w.offset = offset.get();
  w.nested_blocksize = nbs;
  const auto got = t::same_under_all_schedules("quantize then dequantize", [&] {
    ditty::cuda::nf4_quantize(dx.get(), n, bs, true, nbs, dmap.get(), packed.get(), absmax.get(), absmax_q.get(),
                              nested_absmax.get(), offset.get(), nullptr);
    ditty::cuda::nf4_dequantize_rows(w, 0, rows, out.get(), nullptr);
    return t::download(out);
  });
  DITTY_EXPECT(t::bitwise_equal(got, want), "quantize then dequantize: element ",
               t::first_bitwise_difference(got, want));
}

}  // namespace

DITTY_TEST_MAIN()
