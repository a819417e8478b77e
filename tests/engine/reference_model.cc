#include "tests/engine/reference_model.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/weights.h"

namespace breakeven::testing {

namespace {

using Matrix = std::vector<double>;  // row-major

// y (n, out) = x (n, in) W^T, W (out, in)
Matrix Linear(const Matrix& x, int64_t n, int64_t in, const Matrix& w, int64_t out) {
  Matrix y(static_cast<size_t>(n * out), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0;
      for (int64_t k = 0; k < in; ++k) sum += x[i * in + k] * w[o * in + k];
      y[i * out + o] = sum;
    }
  }
  return y;
}

Matrix RmsNorm(const Matrix& x, int64_t n, int64_t d, const Matrix& w, double eps) {
  Matrix y(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += x[i * d + j] * x[i * d + j];
    double inv = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    for (int64_t j = 0; j < d; ++j) y[i * d + j] = x[i * d + j] * inv * w[j];
  }
  return y;
}

// Hugging Face's rotary embedding, written independently: inverse frequencies, Llama-3 scaling,
// rotate_half.
std::vector<double> InvFreq(const engine::ModelConfig& c) {
  std::vector<double> inv;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    inv.push_back(
        std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim)));
  }
  if (c.rope_scaling.factor > 0) {
    const auto& s = c.rope_scaling;
    double old_len = static_cast<double>(s.original_max_position_embeddings);
    for (double& f : inv) {
      double wavelen = 2 * std::numbers::pi / f;
      if (wavelen < old_len / s.high_freq_factor) {
        // high frequency: unchanged
      } else if (wavelen > old_len / s.low_freq_factor) {
        f = f / s.factor;
      } else {
        double smooth =
            (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
  }
  return inv;
}

void Rotate(double* head, int64_t hd, int64_t pos, const std::vector<double>& inv) {
  std::vector<double> x(head, head + hd);
  for (int64_t i = 0; i < hd; ++i) {
    int64_t f = i % (hd / 2);
    double angle = static_cast<double>(pos) * inv[f];
    double rotated = i < hd / 2 ? -x[i + hd / 2] : x[i - hd / 2];  // rotate_half
    head[i] = x[i] * std::cos(angle) + rotated * std::sin(angle);
  }
}

}  // namespace

std::vector<double> ReferenceLogits(const engine::ModelConfig& c, const TensorFn& W,
                                    const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t d = c.hidden_size, hd = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const int64_t inter = c.intermediate_size, vocab = c.vocab_size;
  const std::vector<double> inv = InvFreq(c);

  Matrix embed = W(engine::kEmbedTokens, {vocab, d});
  Matrix x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(embed.begin() + tokens[i] * d, d, x.begin() + i * d);
  }

  for (int64_t l = 0; l < c.num_layers; ++l) {
    auto name = [&](const char* s) { return engine::LayerTensor(l, s); };
    Matrix h = RmsNorm(x, n, d, W(name("input_layernorm.weight"), {d}), c.rms_norm_eps);
    Matrix q = Linear(h, n, d, W(name("self_attn.q_proj.weight"), {nh * hd, d}), nh * hd);
    Matrix k = Linear(h, n, d, W(name("self_attn.k_proj.weight"), {nkv * hd, d}), nkv * hd);
    Matrix v = Linear(h, n, d, W(name("self_attn.v_proj.weight"), {nkv * hd, d}), nkv * hd);
    if (c.qkv_bias) {
      Matrix bq = W(name("self_attn.q_proj.bias"), {nh * hd});
      Matrix bk = W(name("self_attn.k_proj.bias"), {nkv * hd});
      Matrix bv = W(name("self_attn.v_proj.bias"), {nkv * hd});
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < nh * hd; ++j) q[i * nh * hd + j] += bq[j];
        for (int64_t j = 0; j < nkv * hd; ++j) {
          k[i * nkv * hd + j] += bk[j];
          v[i * nkv * hd + j] += bv[j];
        }
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t hh = 0; hh < nh; ++hh) Rotate(&q[(i * nh + hh) * hd], hd, i, inv);
      for (int64_t hh = 0; hh < nkv; ++hh) Rotate(&k[(i * nkv + hh) * hd], hd, i, inv);
    }
    Matrix attn(static_cast<size_t>(n * nh * hd), 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (int64_t hh = 0; hh < nh; ++hh) {
      const int64_t kvh = hh / (nh / nkv);
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> scores(static_cast<size_t>(i + 1));
        double max = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < hd; ++e)
            dot += q[(i * nh + hh) * hd + e] * k[(j * nkv + kvh) * hd + e];
          scores[j] = dot * scale;
          max = std::max(max, scores[j]);
        }
        double sum = 0;
        for (double& s : scores) sum += (s = std::exp(s - max));
        for (int64_t j = 0; j <= i; ++j) {
          for (int64_t e = 0; e < hd; ++e) {
            attn[(i * nh + hh) * hd + e] += scores[j] / sum * v[(j * nkv + kvh) * hd + e];
          }
        }
      }
    }
    Matrix o = Linear(attn, n, nh * hd, W(name("self_attn.o_proj.weight"), {d, nh * hd}), d);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];

    h = RmsNorm(x, n, d, W(name("post_attention_layernorm.weight"), {d}), c.rms_norm_eps);
    Matrix g = Linear(h, n, d, W(name("mlp.gate_proj.weight"), {inter, d}), inter);
    Matrix u = Linear(h, n, d, W(name("mlp.up_proj.weight"), {inter, d}), inter);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
    Matrix down = Linear(g, n, inter, W(name("mlp.down_proj.weight"), {d, inter}), d);
    for (size_t i = 0; i < x.size(); ++i) x[i] += down[i];
  }
  Matrix h = RmsNorm(x, n, d, W(engine::kFinalNorm, {d}), c.rms_norm_eps);
  Matrix head = c.tie_word_embeddings ? embed : W(engine::kLmHead, {vocab, d});
  return Linear(h, n, d, head, vocab);
}

TensorFn DummyTensors(uint64_t seed) {
  return [seed](const std::string& name, const std::vector<int64_t>& shape) {
    int64_t rows = shape.size() == 1 ? 1 : shape[0];
    int64_t cols = shape.size() == 1 ? shape[0] : shape[1];
    std::vector<double> out(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t col = 0; col < cols; ++col) {
        out[r * cols + col] = engine::DummyValue(seed, name, shape, r, col);
      }
    }
    return out;
  };
}

namespace {
engine::ModelConfig Base(const char* name) {
  engine::ModelConfig c;
  c.name = name;
  c.architecture = "llama";
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.head_dim = 8;
  c.max_position_embeddings = 512;
  c.rope_theta = 10000;
  c.rms_norm_eps = 1e-5;
  c.eos_token_ids = {2};
  return c;
}
}  // namespace

engine::ModelConfig SmallLlama() {
  engine::ModelConfig c = Base("small-llama");
  c.rope_scaling = {8.0, 1.0, 4.0, 64};  // small original length so scaling touches real positions
  return c;
}

engine::ModelConfig SmallQwen2() {
  engine::ModelConfig c = Base("small-qwen2");
  c.architecture = "qwen2";
  c.qkv_bias = true;
  c.tie_word_embeddings = true;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  return c;
}

engine::ModelConfig SmallMha() {
  engine::ModelConfig c = Base("small-mha");
  c.num_heads = 4;
  c.num_kv_heads = 4;
  c.head_dim = 16;
  c.tie_word_embeddings = true;
  return c;
}

double RelativeError(const std::vector<double>& reference, const std::vector<float>& actual) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < reference.size() && i < actual.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(reference[i] - static_cast<double>(actual[i])));
    max_ref = std::max(max_ref, std::abs(reference[i]));
  }
  if (reference.size() != actual.size()) return 1e30;
  return max_diff / std::max(max_ref, 1e-30);
}

double RelativeError(const std::vector<float>& reference, const std::vector<float>& actual) {
  return RelativeError(std::vector<double>(reference.begin(), reference.end()), actual);
}

}  // namespace breakeven::testing
