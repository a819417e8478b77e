#include "bench/roofline.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "kernels/backend.h"

namespace breakeven::bench {

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Bandwidth MeasureBandwidth(size_t bytes, int threads, int repeats) {
  const size_t n = bytes / sizeof(float);
  auto* a = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  auto* b = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  // Touch every page first so the measurement does not include page faults.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i & 1023);
    b[i] = 0;
  }
  std::vector<double> copy;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const size_t parts = static_cast<size_t>(omp_get_num_threads());
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const size_t begin = n * t / parts, end = n * (t + 1) / parts;
      std::memcpy(b + begin, a + begin, (end - begin) * sizeof(float));
    }
    copy.push_back(2.0 * static_cast<double>(bytes) / Seconds(t0) / 1e9);
  }
  // The matrix x vector stream, through the backend the engine uses.
  std::vector<double> matvec;
  kernels::BackendOptions options;
  options.threads = threads;
  auto backend = kernels::CreateBackend("cpu", options);
  if (backend.ok()) {
    const int64_t k = 1024, rows = static_cast<int64_t>(n) / k;
    kernels::Tensor w = kernels::Tensor::F32(a, rows, k);
    std::vector<float> x(static_cast<size_t>(k), 1.0f), y(static_cast<size_t>(rows));
    for (int r = 0; r < repeats + 1; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      (*backend)->MatMul(kernels::Tensor::F32(x.data(), 1, k), w, nullptr,
                         kernels::Tensor::F32(y.data(), 1, rows));
      if (r > 0) matvec.push_back(static_cast<double>(rows * k * 4) / Seconds(t0) / 1e9);
    }
  }
  std::free(a);
  std::free(b);
  return {Median(copy), matvec.empty() ? 0 : Median(matvec)};
}

double MeasureSgemmRate(const std::vector<GemmShape>& shapes, int threads, int repeats) {
  openblas_set_num_threads(threads);
  size_t x_max = 0, w_max = 0, y_max = 0;
  double flops = 0;
  for (const GemmShape& s : shapes) {
    x_max = std::max<size_t>(x_max, static_cast<size_t>(s.m * s.k));
    w_max = std::max<size_t>(w_max, static_cast<size_t>(s.n * s.k));
    y_max = std::max<size_t>(y_max, static_cast<size_t>(s.m * s.n));
    flops += 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
  }
  std::vector<float> x(x_max, 0.5f), w(w_max, 0.01f), y(y_max);
  std::vector<double> rates;
  for (int r = 0; r < repeats + 1; ++r) {  // the first round warms up
    auto t0 = std::chrono::steady_clock::now();
    for (const GemmShape& s : shapes) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.m, s.n, s.k, 1.0f, x.data(), s.k,
                  w.data(), s.k, 0.0f, y.data(), s.n);
    }
    if (r > 0) rates.push_back(flops / Seconds(t0));
  }
  return Median(rates);
}

}  // namespace breakeven::bench
