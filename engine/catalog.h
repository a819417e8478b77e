// The model catalog: real shapes (from each model's published config.json) and small shapes for
// tests and demos. A catalog entry is enough to benchmark with dummy weights.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model_config.h"

namespace breakeven::engine {

struct CatalogEntry {
  ModelConfig config;
  std::string source;  // where the shape comes from
};

const std::vector<CatalogEntry>& Catalog();
Result<ModelConfig> FindModel(const std::string& name);

}  // namespace breakeven::engine
