#include "tests/dashboards/metric_catalog.h"

namespace breakeven::testing {

const std::vector<CatalogMetric>& MetricCatalog() {
  using T = MetricType;
  static const std::vector<CatalogMetric> catalog = {
      {"breakeven_build_info", T::kGauge, {"component", "version"}},
      // Scheduler.
      {"breakeven_scheduler_nodes", T::kGauge, {"state"}},
      {"breakeven_scheduler_runs", T::kGauge, {"state"}},
      {"breakeven_scheduler_queue_depth", T::kGauge, {}},
      {"breakeven_scheduler_queue_oldest_age_seconds", T::kGauge, {}},
      {"breakeven_scheduler_placements_total", T::kCounter, {"result"}},
      {"breakeven_scheduler_heartbeat_duration_seconds", T::kHistogram, {}},
      {"breakeven_scheduler_frames_total", T::kCounter, {"type"}},
      {"breakeven_scheduler_frames_refused_total", T::kCounter, {"reason"}},
      {"breakeven_scheduler_db_write_duration_seconds", T::kHistogram, {"operation"}},
      // Node agents.
      {"breakeven_node_device_memory_used_bytes", T::kGauge, {"node", "device", "device_name"}},
      {"breakeven_node_device_memory_total_bytes", T::kGauge, {"node", "device", "device_name"}},
      {"breakeven_node_device_utilization_ratio", T::kGauge, {"node", "device", "device_name"}},
      {"breakeven_node_device_power_watts", T::kGauge, {"node", "device", "device_name"}},
      {"breakeven_node_calibration_copy_bytes_per_second",
       T::kGauge,
       {"node", "device", "device_name"}},
      {"breakeven_node_calibration_matmul_flops_per_second",
       T::kGauge,
       {"node", "device", "device_name"}},
      {"breakeven_node_workers_running", T::kGauge, {"node"}},
      {"breakeven_node_heartbeats_sent_total", T::kCounter, {"node"}},
      // Rank-0 workers.
      {"breakeven_worker_requests_in_flight", T::kGauge, {"run_id", "attempt", "model"}},
      {"breakeven_worker_prompt_tokens_total", T::kCounter, {"run_id", "attempt", "model"}},
      {"breakeven_worker_generated_tokens_total", T::kCounter, {"run_id", "attempt", "model"}},
      {"breakeven_worker_ttft_seconds", T::kHistogram, {"run_id", "attempt", "model"}},
      {"breakeven_worker_inter_token_latency_seconds",
       T::kHistogram,
       {"run_id", "attempt", "model"}},
      {"breakeven_worker_batch_size", T::kGauge, {"run_id", "attempt", "model"}},
      {"breakeven_worker_kv_blocks", T::kGauge, {"run_id", "attempt", "model", "state"}},
      {"breakeven_worker_step_duration_seconds", T::kHistogram, {"run_id", "attempt", "model"}},
      {"breakeven_worker_preemptions_total", T::kCounter, {"run_id", "attempt", "model"}},
  };
  return catalog;
}

const CatalogMetric* FindCatalogMetric(std::string_view series) {
  for (const CatalogMetric& m : MetricCatalog()) {
    if (series == m.name) return &m;
    if (m.type != MetricType::kHistogram || !series.starts_with(m.name)) continue;
    std::string_view suffix = series.substr(m.name.size());
    if (suffix == "_bucket" || suffix == "_sum" || suffix == "_count") return &m;
  }
  return nullptr;
}

const std::set<std::string>& TargetLabels() {
  static const std::set<std::string> labels = {"job", "instance", "node"};
  return labels;
}

}  // namespace breakeven::testing
