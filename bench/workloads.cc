#include "bench/workloads.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <optional>

namespace breakeven::bench {

namespace {

WorkloadSpec Pair(int64_t input, int64_t output) {
  WorkloadSpec w;
  w.name = fmt::format("{}/{}", input, output);
  w.input_tokens = input;
  w.output_tokens = output;
  return w;
}

// A positive decimal integer and nothing else: no sign, no spaces.
std::optional<int64_t> ParsePositive(std::string_view text) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

// "IN/OUT" or "IN:OUT".
std::optional<WorkloadSpec> ParsePair(std::string_view name) {
  size_t sep = name.find_first_of("/:");
  if (sep == std::string_view::npos) return std::nullopt;
  std::optional<int64_t> in = ParsePositive(name.substr(0, sep));
  std::optional<int64_t> out = ParsePositive(name.substr(sep + 1));
  if (!in || !out) return std::nullopt;
  return Pair(*in, *out);
}

// Uniform in [0, n) from the raw 64-bit outputs of the engine, by rejection. Unlike
// std::uniform_int_distribution, whose algorithm each standard library chooses, this gives the
// same ids for a seed everywhere (std::mt19937_64's output sequence is fixed by the standard).
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the low values that would bias x % n
  uint64_t x;
  do {
    x = rng();
  } while (x < threshold);
  return x % n;
}

}  // namespace

Status WorkloadSpec::Validate() const {
  if (name.empty()) return InvalidArgument("name: must not be empty");
  if (input_tokens < 1)
    return InvalidArgument("input_tokens: must be at least 1 (got {})", input_tokens);
  if (output_tokens < 1) {
    return InvalidArgument("output_tokens: must be at least 1 (got {})", output_tokens);
  }
  if (prefix_tokens < 0) {
    return InvalidArgument("prefix_tokens: must be at least 0 (got {})", prefix_tokens);
  }
  if (prefix_tokens >= input_tokens) {
    return InvalidArgument("prefix_tokens: must be less than input_tokens {} (got {})",
                           input_tokens, prefix_tokens);
  }
  if (samples < 1) return InvalidArgument("samples: must be at least 1 (got {})", samples);
  return Status::Ok();
}

Result<std::vector<WorkloadSpec>> ResolveWorkload(std::string_view name) {
  if (name == "almanac") {
    return std::vector<WorkloadSpec>{Pair(128, 1024), Pair(1024, 128), Pair(512, 512),
                                     Pair(256, 2048), Pair(2048, 256), Pair(1024, 1024),
                                     Pair(512, 4096), Pair(4096, 512), Pair(2048, 2048)};
  }
  if (name == "almanac-long") {
    return std::vector<WorkloadSpec>{Pair(8192, 512), Pair(16384, 512), Pair(32768, 512)};
  }
  if (name == "shared-prefix") {
    WorkloadSpec w;
    w.name = "shared-prefix";
    w.prefix_tokens = 2048;
    w.input_tokens = w.prefix_tokens + 128;  // the shared system prompt, then the question
    w.output_tokens = 256;
    return std::vector<WorkloadSpec>{w};
  }
  if (std::optional<WorkloadSpec> pair = ParsePair(name)) return std::vector<WorkloadSpec>{*pair};
  return InvalidArgument(
      "unknown workload '{}': not one of {}, nor IN/OUT with positive token counts (512/512)", name,
      fmt::join(WorkloadCatalogNames(), ", "));
}

std::vector<std::string> WorkloadCatalogNames() {
  return {"almanac", "almanac-long", "shared-prefix"};
}

PromptGenerator::PromptGenerator(const WorkloadSpec& workload, int64_t vocab_size, uint64_t seed)
    : workload_(workload), vocab_(std::max<int64_t>(vocab_size, 1)), rng_(seed) {
  int64_t prefix =
      std::clamp<int64_t>(workload_.prefix_tokens, 0, std::max<int64_t>(workload_.input_tokens, 0));
  prefix_.reserve(static_cast<size_t>(prefix));
  for (int64_t i = 0; i < prefix; ++i) {
    prefix_.push_back(static_cast<int32_t>(UniformBelow(rng_, static_cast<uint64_t>(vocab_))));
  }
}

std::vector<int32_t> PromptGenerator::Next() {
  std::vector<int32_t> prompt = prefix_;
  int64_t total = std::max<int64_t>(workload_.input_tokens, 0);
  prompt.reserve(static_cast<size_t>(total));
  while (static_cast<int64_t>(prompt.size()) < total) {
    prompt.push_back(static_cast<int32_t>(UniformBelow(rng_, static_cast<uint64_t>(vocab_))));
  }
  return prompt;
}

}  // namespace breakeven::bench
