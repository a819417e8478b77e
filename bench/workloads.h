// Workloads: what the requests of a benchmark look like.
//
// Named workloads (the catalog):
//   "almanac"        Modal's LLM Almanac grid, nine input/output pairs: 128/1024, 1024/128,
//                    512/512, 256/2048, 2048/256, 1024/1024, 512/4096, 4096/512, 2048/2048
//   "almanac-long"   its long-context pairs: 8192/512, 16384/512, 32768/512
//   "shared-prefix"  SGLang's generated-shared-prefix shape: a 2048-token system prompt shared by
//                    every request, a 128-token question, 256 tokens out
//   "IN/OUT" or "IN:OUT", e.g. "128/1024": one pair
// A workload may ask for n samples per prompt (the n samples share the prompt's KV blocks).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace breakeven::bench {

struct WorkloadSpec {
  std::string name;           // "128/1024", "shared-prefix", or a name from a matrix file
  int64_t input_tokens = 0;   // prompt tokens, the shared prefix included
  int64_t output_tokens = 0;  // tokens generated per sample
  int64_t prefix_tokens = 0;  // leading prompt tokens identical in every request
  int samples = 1;            // n samples per prompt

  // Errors name the field: lengths positive, prefix shorter than the input, samples >= 1.
  Status Validate() const;
};

// Expands a catalog name ("almanac", "shared-prefix", "512/512", "512:512") into workloads.
// Unknown names are an error listing the catalog.
Result<std::vector<WorkloadSpec>> ResolveWorkload(std::string_view name);

// The names the catalog knows, for messages and `--help`.
std::vector<std::string> WorkloadCatalogNames();

// Generates prompts for a workload: seeded random token ids in [0, vocab), the first
// prefix_tokens of every prompt the same.
class PromptGenerator {
 public:
  PromptGenerator(const WorkloadSpec& workload, int64_t vocab_size, uint64_t seed);
  std::vector<int32_t> Next();

 private:
  WorkloadSpec workload_;
  int64_t vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> prefix_;
};

}  // namespace breakeven::bench
