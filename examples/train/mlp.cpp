// SPDX-License-Identifier: Apache-2.0
#include "mlp.hpp"

#include <cmath>
#include <cstring>

#include "mix.hpp"

namespace train {
namespace {

uint64_t fnv1a(uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

const float* f(const Parameter& p) {
  return p.value->local_all<float>().data();
}

}  // namespace

Mlp::Mlp(const cairn::Session& session, int hidden, uint64_t seed)
    : session_(&session),
      hidden_(hidden),
      adam_(std::make_shared<cairn::Adam>(session, cairn::Adam::Options{.learning_rate = 3e-3})) {
  const int64_t h = hidden;
  const struct {
    const char* layer;
    const char* name;
    int64_t rows, cols, fan_in;
  } shapes[] = {{"l1", "kernel", kInputs, h, kInputs},
                {"l1", "bias", h, 1, 0},
                {"l2", "kernel", h, h, h},
                {"l2", "bias", h, 1, 0},
                {"out", "kernel", h, 1, h},
                {"out", "bias", 1, 1, 0}};
  int index = 0;
  for (const auto& s : shapes) {
    auto layer = std::dynamic_pointer_cast<cairn::Module>(module_->child(s.layer));
    if (!layer) layer = module_->add(s.layer, std::make_shared<cairn::Module>());
    cairn::Shape shape = s.cols == 1 && std::string(s.name) == "bias"
                             ? cairn::Shape{s.rows}
                             : cairn::Shape{s.rows, s.cols};
    auto value = cairn::Variable::create<float>(session, shape, cairn::Layout::replicated());
    layer->track(s.name, value);
    // Glorot-style uniform init from a hash: identical on every rank without communication.
    const float scale = s.fan_in ? std::sqrt(6.0f / static_cast<float>(s.fan_in + s.cols)) : 0.0f;
    auto w = value->local_all<float>();
    for (std::size_t i = 0; i < w.size(); ++i)
      w[i] = scale * static_cast<float>(
                         static_cast<double>(
                             mix(seed * 131u + static_cast<uint64_t>(index) * 1000003u + i) >> 11) *
                             0x1.0p-53 * 2.0 -
                         1.0);
    Parameter p{value, adam_->add_slot(value, "m", cairn::Layout::block(0)),
                adam_->add_slot(value, "v", cairn::Layout::block(0)), s.rows, s.cols};
    params_.push_back(p);
    ++index;
  }
}

int64_t Mlp::parameter_bytes() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.rows * p.cols;
  return n * 4;
}

void Mlp::forward_backward(const Dataset& data, const std::vector<int64_t>& samples,
                           int global_batch, std::vector<float>& grads, double& loss_sum) const {
  const int b = static_cast<int>(samples.size());
  const int h = hidden_;
  const float *w1 = f(params_[0]), *b1 = f(params_[1]), *w2 = f(params_[2]), *b2 = f(params_[3]),
              *w3 = f(params_[4]), *b3 = f(params_[5]);
  std::vector<float> x(static_cast<std::size_t>(b) * kInputs), h1(static_cast<std::size_t>(b) * h),
      h2(static_cast<std::size_t>(b) * h), dh2(static_cast<std::size_t>(b) * h),
      dh1(static_cast<std::size_t>(b) * h), dout(static_cast<std::size_t>(b));
  for (int s = 0; s < b; ++s)
    for (int j = 0; j < kInputs; ++j)
      x[static_cast<std::size_t>(s * kInputs + j)] =
          data.input(samples[static_cast<std::size_t>(s)], j);
      // Every parallel loop below gives each output element to one thread with a serial inner sum,
      // so results are bitwise reproducible for any thread count.
#pragma omp parallel for schedule(static)
  for (int s = 0; s < b; ++s) {
    for (int k = 0; k < h; ++k) {
      float acc = b1[k];
      for (int j = 0; j < kInputs; ++j)
        acc += x[static_cast<std::size_t>(s * kInputs + j)] * w1[j * h + k];
      h1[static_cast<std::size_t>(s) * h + k] = std::tanh(acc);
    }
    for (int k = 0; k < h; ++k) {
      float acc = b2[k];
      for (int j = 0; j < h; ++j)
        acc += h1[static_cast<std::size_t>(s) * h + j] * w2[static_cast<std::size_t>(j) * h + k];
      h2[static_cast<std::size_t>(s) * h + k] = std::tanh(acc);
    }
  }
  loss_sum = 0;
  for (int s = 0; s < b; ++s) {
    float out = b3[0];
    for (int k = 0; k < h; ++k) out += h2[static_cast<std::size_t>(s) * h + k] * w3[k];
    const float err = out - data.target(samples[static_cast<std::size_t>(s)]);
    loss_sum += 0.5 * static_cast<double>(err) * err;
    dout[static_cast<std::size_t>(s)] = err / static_cast<float>(global_batch);
  }
#pragma omp parallel for schedule(static)
  for (int s = 0; s < b; ++s) {
    for (int k = 0; k < h; ++k) {
      const float a = h2[static_cast<std::size_t>(s) * h + k];
      dh2[static_cast<std::size_t>(s) * h + k] =
          dout[static_cast<std::size_t>(s)] * w3[k] * (1 - a * a);
    }
    for (int j = 0; j < h; ++j) {
      float acc = 0;
      for (int k = 0; k < h; ++k)
        acc += dh2[static_cast<std::size_t>(s) * h + k] * w2[static_cast<std::size_t>(j) * h + k];
      const float a = h1[static_cast<std::size_t>(s) * h + j];
      dh1[static_cast<std::size_t>(s) * h + j] = acc * (1 - a * a);
    }
  }
  // Gradients, laid out parameter after parameter in the order of params_.
  std::vector<std::size_t> offset(params_.size() + 1, 0);
  for (std::size_t i = 0; i < params_.size(); ++i)
    offset[i + 1] = offset[i] + static_cast<std::size_t>(params_[i].rows * params_[i].cols);
  grads.assign(offset.back(), 0.0f);
  float *g1 = &grads[offset[0]], *gb1 = &grads[offset[1]], *g2 = &grads[offset[2]],
        *gb2 = &grads[offset[3]], *g3 = &grads[offset[4]], *gb3 = &grads[offset[5]];
#pragma omp parallel for schedule(static)
  for (int j = 0; j < h; ++j) {
    for (int k = 0; k < h; ++k) {
      float acc = 0;
      for (int s = 0; s < b; ++s)
        acc += h1[static_cast<std::size_t>(s) * h + j] * dh2[static_cast<std::size_t>(s) * h + k];
      g2[static_cast<std::size_t>(j) * h + k] = acc;
    }
    float a2 = 0, a1 = 0, a3 = 0;
    for (int s = 0; s < b; ++s) {
      a2 += dh2[static_cast<std::size_t>(s) * h + j];
      a1 += dh1[static_cast<std::size_t>(s) * h + j];
      a3 += h2[static_cast<std::size_t>(s) * h + j] * dout[static_cast<std::size_t>(s)];
    }
    gb2[j] = a2;
    gb1[j] = a1;
    g3[j] = a3;
    for (int i = 0; i < kInputs; ++i) {
      float acc = 0;
      for (int s = 0; s < b; ++s)
        acc +=
            x[static_cast<std::size_t>(s * kInputs + i)] * dh1[static_cast<std::size_t>(s) * h + j];
      g1[i * h + j] = acc;
    }
  }
  float a = 0;
  for (int s = 0; s < b; ++s) a += dout[static_cast<std::size_t>(s)];
  gb3[0] = a;
}

void Mlp::apply_adam(const std::vector<float>& grads) {
  const cairn::Adam::Options o{.learning_rate = 3e-3};
  adam_->begin_step();
  const double t = static_cast<double>(adam_->iterations());
  const double lr_t =
      o.learning_rate * std::sqrt(1 - std::pow(o.beta2, t)) / (1 - std::pow(o.beta1, t));
  const int n = session_->size();
  std::size_t goff = 0;
  for (Parameter& p : params_) {
    float* w = p.value->local_all<float>().data();
    const auto [r0, r1] = cairn::block_range(p.rows, n, session_->rank());
    float* m = p.m->local_all<float>().data();
    float* v = p.v->local_all<float>().data();
    const int64_t first = r0 * p.cols, count = (r1 - r0) * p.cols;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      const double g = grads[goff + static_cast<std::size_t>(first + i)];
      const double mi = o.beta1 * m[i] + (1 - o.beta1) * g;
      const double vi = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      m[i] = static_cast<float>(mi);
      v[i] = static_cast<float>(vi);
      w[first + i] = static_cast<float>(w[first + i] - lr_t * mi / (std::sqrt(vi) + o.epsilon));
    }
    // Every rank gets every other rank's updated rows: the weights stay replicated.
    std::vector<int> counts(static_cast<std::size_t>(n)), displs(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
      const auto [a, b] = cairn::block_range(p.rows, n, r);
      counts[static_cast<std::size_t>(r)] = static_cast<int>((b - a) * p.cols);
      displs[static_cast<std::size_t>(r)] = static_cast<int>(a * p.cols);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, w, counts.data(), displs.data(), MPI_FLOAT,
                   session_->comm().get());
    goff += static_cast<std::size_t>(p.rows * p.cols);
  }
}

double Mlp::step(const Dataset& data, const std::vector<int64_t>& samples, int global_batch) {
  std::vector<float> grads;
  double loss = 0;
  forward_backward(data, samples, global_batch, grads, loss);
  MPI_Allreduce(MPI_IN_PLACE, grads.data(), static_cast<int>(grads.size()), MPI_FLOAT, MPI_SUM,
                session_->comm().get());
  MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, session_->comm().get());
  apply_adam(grads);
  return loss / global_batch;
}

uint64_t Mlp::digest() const {
  const int n = session_->size();
  uint64_t h = 0xcbf29ce484222325ull;
  const int64_t iterations = adam_->iterations();
  h = fnv1a(h, &iterations, sizeof iterations);
  for (const Parameter& p : params_) {
    h = fnv1a(h, f(p), static_cast<std::size_t>(p.rows * p.cols) * 4);
    for (const auto& slot : {p.m, p.v}) {
      std::vector<float> full(static_cast<std::size_t>(p.rows * p.cols));
      std::vector<int> counts(static_cast<std::size_t>(n)), displs(static_cast<std::size_t>(n));
      for (int r = 0; r < n; ++r) {
        const auto [a, b] = cairn::block_range(p.rows, n, r);
        counts[static_cast<std::size_t>(r)] = static_cast<int>((b - a) * p.cols);
        displs[static_cast<std::size_t>(r)] = static_cast<int>(a * p.cols);
      }
      auto local = slot->local_all<float>();
      MPI_Allgatherv(local.data(), static_cast<int>(local.size()), MPI_FLOAT, full.data(),
                     counts.data(), displs.data(), MPI_FLOAT, session_->comm().get());
      h = fnv1a(h, full.data(), full.size() * 4);
    }
  }
  return h;
}

}  // namespace train
