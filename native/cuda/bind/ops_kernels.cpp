// The CUDA side of the shared, RWKV-4 and GPT-NeoX bindings: dtype dispatch onto the kernels of
// native/cuda/include/ditty/cuda/{common,rwkv,neox}.h, with the device scratch they need.
#include <vector>

#include "cuda/bind/ops_util.h"
#include "ditty/cuda/common.h"
#include "ditty/cuda/neox.h"
#include "ditty/cuda/rwkv.h"

namespace ditty::cuda::ops {

void embedding_forward(Buffer& ids, int64_t n, Buffer& table, int64_t C, Buffer& out) {
  with_storage("embeddingForward", {{"table", &table}, {"out", &out}}, [&](auto t) {
    k::embedding_forward(as<int32_t>(ids), n, as<DITTY_S>(table), C, as<DITTY_S>(out), st());
  });
}

void layernorm_forward(Buffer& x, Buffer& w, Buffer& b, int64_t N, int64_t C, float eps, Buffer& out, Buffer& mean,
                       Buffer& rstd) {
  with_storage("layernormForward", {{"x", &x}, {"out", &out}}, [&](auto t) {
    k::layernorm_forward(as<DITTY_S>(x), f(w), f(b), N, C, eps, as<DITTY_S>(out), f(mean), f(rstd), st());
  });
}

void layernorm_backward(Buffer& dy, Buffer& x, Buffer& w, Buffer& mean, Buffer& rstd, int64_t N, int64_t C, Buffer& dx,
                        bool acc) {
  with_storage("layernormBackward", {{"dy", &dy}, {"x", &x}, {"dx", &dx}}, [&](auto t) {
    using S = DITTY_S;
    k::layernorm_backward(as<S>(dy), as<S>(x), f(w), f(mean), f(rstd), N, C, as<S>(dx), acc, static_cast<const S*>(nullptr), st());
  });
}

void add(Buffer& a, Buffer& b, Buffer& out, int64_t n) {
  with_storage("add", {{"a", &a}, {"b", &b}, {"out", &out}},
               [&](auto t) { k::add(as<DITTY_S>(a), as<DITTY_S>(b), as<DITTY_S>(out), n, st()); });
}

void add_inplace(Buffer& y, Buffer& x, int64_t n) {
  with_storage("addInplace", {{"y", &y}, {"x", &x}}, [&](auto t) { k::add_inplace(as<DITTY_S>(y), as<DITTY_S>(x), n, st()); });
}

void scale_inplace(Buffer& x, int64_t n, float s) {
  with_storage("scaleInplace", {{"x", &x}}, [&](auto t) { k::scale_inplace(as<DITTY_S>(x), n, s, st()); });
}

void adamw_step(Buffer& p, Buffer& g, Buffer& m, Buffer& v, int64_t n, double lr, double beta1, double beta2, double eps,
                double wd, int64_t step) {
  k::adamw_step(f(p), f(g), f(m), f(v), n, lr, beta1, beta2, eps, wd, step, nullptr, st());
}

double sum_squares(Buffer& x, int64_t n) {
  Context& c = context();
  auto* out = static_cast<double*>(c.scratch(0, sizeof(double)));
  auto* scratch = static_cast<double*>(c.scratch(1, sizeof(double) * static_cast<size_t>(k::sum_squares_scratch_doubles(n))));
  k::sum_squares(f(x), n, out, scratch, c.stream);
  double host = 0;
  copy_to_host(&host, out, sizeof host);
  return host;
}

std::vector<int32_t> read_i32(Buffer& b, int64_t n) {
  std::vector<int32_t> out(static_cast<size_t>(n));
  if (n) copy_to_host(out.data(), b.data, out.size() * sizeof(int32_t));
  return out;
}

std::vector<float> read_f32(Buffer& b, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (n) copy_to_host(out.data(), b.data, out.size() * sizeof(float));
  return out;
}

// ---- RWKV-4

template <class S>
static std::vector<S*> pointers(const std::vector<Buffer*>& list) {
  std::vector<S*> out;
  for (Buffer* b : list) out.push_back(as<S>(b));
  return out;
}

void time_mix_forward(Buffer& x, Buffer* state, int64_t B, int64_t T, int64_t C, const std::vector<Buffer*>& mixes,
                      const std::vector<Buffer*>& outs) {
  const bool bf = activations_bf16("timeMixForward", {{"x", &x}, {"state", state}});
  for (Buffer* o : outs) activations_bf16("timeMixForward", {{"x", &x}, {"outs", o}});
  std::vector<const float*> m(mixes.size());
  for (size_t j = 0; j < mixes.size(); j++) m[j] = f(mixes[j]);
  if (bf) {
    k::time_mix_forward(as<bf16>(x), as<bf16>(state), B, T, C, m.data(), static_cast<int>(m.size()), pointers<bf16>(outs).data(), st());
  } else {
    k::time_mix_forward(f(x), f(state), B, T, C, m.data(), static_cast<int>(m.size()), pointers<float>(outs).data(), st());
  }
}

void time_mix_backward(const std::vector<Buffer*>& douts, const std::vector<Buffer*>& mixes, int64_t B, int64_t T, int64_t C,
                       Buffer& dx, bool acc) {
  for (Buffer* d : douts) activations_bf16("timeMixBackward", {{"dx", &dx}, {"douts", d}});
  std::vector<const float*> m(mixes.size());
  for (size_t j = 0; j < mixes.size(); j++) m[j] = f(mixes[j]);
  if (dx.dtype == ::ditty::DType::BF16) {
    std::vector<bf16*> d = pointers<bf16>(douts);
    std::vector<const bf16*> cd(d.begin(), d.end());
    k::time_mix_backward(cd.data(), m.data(), static_cast<int>(m.size()), B, T, C, as<bf16>(dx), acc, st());
  } else {
    std::vector<float*> d = pointers<float>(douts);
    std::vector<const float*> cd(d.begin(), d.end());
    k::time_mix_backward(cd.data(), m.data(), static_cast<int>(m.size()), B, T, C, f(dx), acc, st());
  }
}

void wkv_forward(Buffer& decay, Buffer& first, Buffer& kk, Buffer& v, int64_t B, int64_t T, int64_t C, Buffer& y,
                 Buffer* state) {
  with_storage("wkvForward", {{"k", &kk}, {"v", &v}, {"y", &y}}, [&](auto t) {
    k::wkv_forward(f(decay), f(first), as<DITTY_S>(kk), as<DITTY_S>(v), B, T, C, as<DITTY_S>(y), f(state), st());
  });
}

void wkv_backward(Buffer& decay, Buffer& first, Buffer& kk, Buffer& v, Buffer& dy, int64_t B, int64_t T, int64_t C,
                  Buffer& dk, Buffer& dv) {
  auto* scratch = static_cast<float*>(context().scratch(0, sizeof(float) * static_cast<size_t>(k::wkv_backward_scratch_floats(B, T, C))));
  with_storage("wkvBackward", {{"k", &kk}, {"v", &v}, {"dy", &dy}, {"dk", &dk}, {"dv", &dv}}, [&](auto t) {
    using S = DITTY_S;
    k::wkv_backward(f(decay), f(first), as<S>(kk), as<S>(v), as<S>(dy), B, T, C, as<S>(dk), as<S>(dv), scratch, st());
  });
}

void sigmoid_gate_forward(Buffer& a, Buffer& y, Buffer& out, int64_t n) {
  with_storage("sigmoidGateForward", {{"a", &a}, {"y", &y}, {"out", &out}},
               [&](auto t) { k::sigmoid_gate_forward(as<DITTY_S>(a), as<DITTY_S>(y), as<DITTY_S>(out), n, st()); });
}

void sigmoid_gate_backward(Buffer& a, Buffer& y, Buffer& dout, Buffer* da, Buffer* dy, int64_t n) {
  with_storage("sigmoidGateBackward", {{"a", &a}, {"y", &y}, {"dout", &dout}, {"da", da}, {"dy", dy}}, [&](auto t) {
    using S = DITTY_S;
    k::sigmoid_gate_backward(as<S>(a), as<S>(y), as<S>(dout), as<S>(da), as<S>(dy), n, st());
  });
}

void relu_square_forward(Buffer& x, Buffer& out, int64_t n) {
  with_storage("reluSquareForward", {{"x", &x}, {"out", &out}},
               [&](auto t) { k::relu_square_forward(as<DITTY_S>(x), as<DITTY_S>(out), n, st()); });
}

void relu_square_backward(Buffer& x, Buffer& dy, Buffer& dx, int64_t n) {
  with_storage("reluSquareBackward", {{"x", &x}, {"dy", &dy}, {"dx", &dx}},
               [&](auto t) { k::relu_square_backward(as<DITTY_S>(x), as<DITTY_S>(dy), as<DITTY_S>(dx), n, st()); });
}

// ---- GPT-NeoX

void qkv_rotary_forward(Buffer& qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                        int64_t offset, Buffer& q, Buffer& kk, Buffer& v) {
  with_storage("qkvRotaryForward", {{"qkv", &qkv}, {"q", &q}, {"k", &kk}, {"v", &v}}, [&](auto t) {
    using S = DITTY_S;
    k::qkv_rotary_forward(as<S>(qkv), B, T, heads, d, R, base, offset, as<S>(q), as<S>(kk), as<S>(v), st());
  });
}

void qkv_rotary_backward(Buffer& dq, Buffer& dk, Buffer& dv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R,
                         double base, int64_t offset, Buffer& dqkv) {
  with_storage("qkvRotaryBackward", {{"dq", &dq}, {"dk", &dk}, {"dv", &dv}, {"dqkv", &dqkv}}, [&](auto t) {
    using S = DITTY_S;
    k::qkv_rotary_backward(as<S>(dq), as<S>(dk), as<S>(dv), B, T, heads, d, R, base, offset, as<S>(dqkv), st());
  });
}

void attention_forward(Buffer& q, Buffer& kk, Buffer& v, int64_t B, int64_t H, int64_t T, int64_t S_, int64_t d,
                       Buffer& out, Buffer* lse) {
  with_storage("attentionForward", {{"q", &q}, {"k", &kk}, {"v", &v}, {"out", &out}}, [&](auto t) {
    using S = DITTY_S;
    k::attention_forward(as<S>(q), as<S>(kk), as<S>(v), B, H, T, S_, d, as<S>(out), f(lse), st());
  });
}

void attention_backward(Buffer& dout, Buffer& q, Buffer& kk, Buffer& v, Buffer& out, Buffer& lse, int64_t B, int64_t H,
                        int64_t T, int64_t d, Buffer& dq, Buffer& dk, Buffer& dv) {
  auto* scratch = static_cast<float*>(context().scratch(0, sizeof(float) * static_cast<size_t>(k::attention_backward_scratch_floats(B, H, T))));
  with_storage("attentionBackward",
               {{"dout", &dout}, {"q", &q}, {"k", &kk}, {"v", &v}, {"out", &out}, {"dq", &dq}, {"dk", &dk}, {"dv", &dv}},
               [&](auto t) {
                 using S = DITTY_S;
                 k::attention_backward(as<S>(dout), as<S>(q), as<S>(kk), as<S>(v), as<S>(out), f(lse), B, H, T, d, as<S>(dq),
                                       as<S>(dk), as<S>(dv), scratch, st());
               });
}

void gelu_forward(Buffer& x, Buffer& out, int64_t n, cpu::Gelu kind) {
  with_storage("geluForward", {{"x", &x}, {"out", &out}},
               [&](auto t) { k::gelu_forward(as<DITTY_S>(x), as<DITTY_S>(out), n, kind, st()); });
}

void gelu_backward(Buffer& x, Buffer& dy, Buffer& dx, int64_t n, cpu::Gelu kind) {
  with_storage("geluBackward", {{"x", &x}, {"dy", &dy}, {"dx", &dx}},
               [&](auto t) { k::gelu_backward(as<DITTY_S>(x), as<DITTY_S>(dy), as<DITTY_S>(dx), n, kind, st()); });
}

}  // namespace ditty::cuda::ops
