// The metric catalog the dashboards are written against: every name the scheduler, the node
// agents and the rank-0 workers expose, with its type and labels (docs/observability.md). A
// dashboard that names anything else shows an empty panel; the tests check against this list.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace breakeven::testing {

enum class MetricType { kCounter, kGauge, kHistogram };

struct CatalogMetric {
  std::string name;
  MetricType type;
  std::set<std::string> labels;  // as exposed; Prometheus adds job and instance
};

const std::vector<CatalogMetric>& MetricCatalog();

// The catalog entry for a series name: the metric itself, or a histogram's _bucket (which adds
// the label le), _sum or _count series. nullptr when the name is not in the catalog.
const CatalogMetric* FindCatalogMetric(std::string_view series);

// Labels every scraped series may carry besides its own: the target's job and instance, and for
// workers the node that service discovery adds.
const std::set<std::string>& TargetLabels();

}  // namespace breakeven::testing
