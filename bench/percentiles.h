// Percentiles of a sample, defined once for every benchmark in the project.
//
// Definition: linear interpolation between closest ranks, as numpy.percentile's default
// ("linear") and therefore as vLLM's benchmark scripts report p50/p90/p99: for sorted values
// x[0..n-1] and q in [0, 100], h = (n - 1) q / 100, result = x[floor h] + (h - floor h) *
// (x[floor h + 1] - x[floor h]).
#pragma once

#include <cstddef>
#include <vector>

namespace breakeven::bench {

struct Summary {
  size_t count = 0;
  double mean = 0, min = 0, max = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0;
};

// q in [0, 100]. `sorted` must be sorted ascending and non-empty.
double Percentile(const std::vector<double>& sorted, double q);

// Sorts a copy of `values` and summarises it; all zeros for an empty sample.
Summary Summarize(std::vector<double> values);

}  // namespace breakeven::bench
