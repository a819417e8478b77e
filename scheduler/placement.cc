#include "scheduler/placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <numeric>
#include <set>

namespace breakeven::scheduler {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

double GiB(double bytes) { return bytes / double(int64_t{1} << 30); }

bool IsCpuType(const std::string& device_type) { return Lower(device_type) == "cpu"; }

// How a node could serve the request: the devices it would use, and how many ranks they hold.
struct Offer {
  const NodeCapacity* node = nullptr;
  std::vector<const v1::Device*> devices;  // GPU: one per rank it can take; CPU: the CPU
  int ranks = 0;                           // ranks this node can hold
};

// What each node offers. With `ignore_busy`, devices held by other runs count as free (to tell
// "waiting" from "never fits").
std::vector<Offer> Offers(const PlacementRequest& req, const std::vector<NodeCapacity>& nodes,
                          bool ignore_busy) {
  std::vector<Offer> out;
  const bool cpu = IsCpuType(req.device_type);
  for (const NodeCapacity& n : nodes) {
    if (!ignore_busy && !n.schedulable) continue;
    Offer o;
    o.node = &n;
    for (const v1::Device& d : n.devices) {
      if (!DeviceMatches(d, req.device_type)) continue;
      const bool busy = std::find(n.busy_devices.begin(), n.busy_devices.end(), d.index()) !=
                        n.busy_devices.end();
      if (busy && !ignore_busy) continue;
      if (cpu) {
        int64_t fit = req.tp;
        if (req.bytes_per_rank > 0) {
          fit = static_cast<int64_t>(d.memory_bytes()) / req.bytes_per_rank;
        }
        o.devices = {&d};
        o.ranks = static_cast<int>(std::min<int64_t>(fit, req.tp));
        break;  // one CPU device per node
      }
      if (req.bytes_per_rank > 0 && static_cast<int64_t>(d.memory_bytes()) < req.bytes_per_rank) {
        continue;
      }
      o.devices.push_back(&d);
      o.ranks = static_cast<int>(o.devices.size());
    }
    if (o.ranks > 0) out.push_back(o);
  }
  // Most capacity first; ties by name, so placement is deterministic.
  std::stable_sort(out.begin(), out.end(), [](const Offer& a, const Offer& b) {
    if (a.ranks != b.ranks) return a.ranks > b.ranks;
    return a.node->name < b.node->name;
  });
  return out;
}

NodeShare ShareOf(const Offer& o, bool cpu, int first_rank, int ranks) {
  NodeShare s;
  s.node_id = o.node->id;
  s.node = o.node->name;
  for (int r = 0; r < ranks; ++r) {
    s.ranks.push_back(static_cast<uint32_t>(first_rank + r));
    const v1::Device* d = cpu ? o.devices.front() : o.devices[static_cast<size_t>(r)];
    s.devices.push_back(d->index());
    if (cpu && r > 0) continue;
    s.bandwidth_gb_s += d->bandwidth_gb_s();
    s.matmul_tflops += d->matmul_tflops();
  }
  s.device_name = o.devices.front()->name();
  s.compute_units = o.devices.front()->compute_units();
  return s;
}

// Fewest hosts: the largest offers first; ranks split as evenly as their capacity allows.
std::optional<Placement> Assemble(const PlacementRequest& req, const std::vector<Offer>& offers,
                                  bool multi_host) {
  const bool cpu = IsCpuType(req.device_type);
  if (offers.empty()) return std::nullopt;
  if (!multi_host || offers.front().ranks >= req.tp) {
    if (offers.front().ranks < req.tp) return std::nullopt;
    // One host: the smallest offer that still holds every rank keeps big nodes free.
    const Offer* best = nullptr;
    for (const Offer& o : offers) {
      if (o.ranks >= req.tp) best = &o;
    }
    Placement p;
    p.shares.push_back(ShareOf(*best, cpu, 0, req.tp));
    return p;
  }
  int hosts = 0, capacity = 0;
  while (hosts < static_cast<int>(offers.size()) && capacity < req.tp) {
    capacity += offers[static_cast<size_t>(hosts)].ranks;
    ++hosts;
  }
  if (capacity < req.tp) return std::nullopt;
  // Even split, capped by each host's capacity; leftovers go to hosts with room.
  std::vector<int> take(static_cast<size_t>(hosts), 0);
  int left = req.tp;
  for (int h = 0; h < hosts; ++h) {
    const int even = (req.tp + hosts - 1) / hosts;
    take[static_cast<size_t>(h)] = std::min({even, offers[static_cast<size_t>(h)].ranks, left});
    left -= take[static_cast<size_t>(h)];
  }
  for (int h = 0; h < hosts && left > 0; ++h) {
    const int more =
        std::min(left, offers[static_cast<size_t>(h)].ranks - take[static_cast<size_t>(h)]);
    take[static_cast<size_t>(h)] += more;
    left -= more;
  }
  Placement p;
  int rank = 0;
  for (int h = 0; h < hosts; ++h) {
    if (take[static_cast<size_t>(h)] == 0) continue;
    p.shares.push_back(
        ShareOf(offers[static_cast<size_t>(h)], cpu, rank, take[static_cast<size_t>(h)]));
    rank += take[static_cast<size_t>(h)];
  }
  return p;
}

std::string NeedText(const PlacementRequest& req) {
  if (req.bytes_per_rank <= 0) return "";
  return fmt::format(" of {:.2f} GiB each", GiB(static_cast<double>(req.bytes_per_rank)));
}

}  // namespace

int Placement::devices() const {
  int n = 0;
  for (const NodeShare& s : shares) {
    std::set<uint32_t> distinct(s.devices.begin(), s.devices.end());
    n += static_cast<int>(distinct.size());
  }
  return n;
}

bool DeviceMatches(const v1::Device& device, const std::string& device_type) {
  if (IsCpuType(device_type)) return device.kind() == v1::DEVICE_KIND_CPU;
  if (device.kind() != v1::DEVICE_KIND_CUDA) return false;
  return Lower(device.name()).find(Lower(device_type)) != std::string::npos;
}

PlacementResult Place(const PlacementRequest& req, const std::vector<NodeCapacity>& nodes) {
  PlacementResult result;
  if (auto p = Assemble(req, Offers(req, nodes, /*ignore_busy=*/false), req.allow_multi_host)) {
    result.placement = std::move(*p);
    return result;
  }

  // Why not: would it fit on an idle cluster?
  const bool cpu = IsCpuType(req.device_type);
  const std::string unit = cpu ? "rank" : fmt::format("{} device", req.device_type);
  int64_t largest = 0;
  bool any_type = false;
  for (const NodeCapacity& n : nodes) {
    for (const v1::Device& d : n.devices) {
      if (!DeviceMatches(d, req.device_type)) continue;
      any_type = true;
      largest = std::max(largest, static_cast<int64_t>(d.memory_bytes()));
    }
  }
  if (!any_type) {
    std::set<std::string> offered;
    for (const NodeCapacity& n : nodes) {
      for (const v1::Device& d : n.devices) {
        offered.insert(d.kind() == v1::DEVICE_KIND_CPU ? "cpu" : d.name());
      }
    }
    std::string list;
    for (const std::string& o : offered) list += (list.empty() ? "" : ", ") + o;
    result.never_fits = true;
    result.reason = fmt::format("no node has a '{}' device (nodes offer: {})", req.device_type,
                                list.empty() ? "nothing yet" : list);
    return result;
  }
  if (req.bytes_per_rank > 0 && largest < req.bytes_per_rank) {
    result.never_fits = true;
    result.reason = fmt::format(
        "needs {:.2f} GiB per rank (weights / tp {} + KV cache); the largest {} device has "
        "{:.2f} GiB",
        GiB(static_cast<double>(req.bytes_per_rank)), req.tp, req.device_type,
        GiB(static_cast<double>(largest)));
    return result;
  }
  const std::vector<Offer> idle = Offers(req, nodes, /*ignore_busy=*/true);
  if (!Assemble(req, idle, req.allow_multi_host)) {
    result.never_fits = true;
    const int most = idle.empty() ? 0 : idle.front().ranks;
    if (!req.allow_multi_host) {
      result.reason = fmt::format(
          "needs {} {}{}{} on one host; the most one host can hold is {} (set "
          "allow_multi_host: true to span hosts)",
          req.tp, unit, req.tp > 1 ? "s" : "", NeedText(req), most);
    } else {
      int total = 0;
      for (const Offer& o : idle) total += o.ranks;
      result.reason = fmt::format("needs {} {}{}{}; the whole cluster can hold {}", req.tp, unit,
                                  req.tp > 1 ? "s" : "", NeedText(req), total);
    }
    return result;
  }
  result.reason = fmt::format(
      "waiting for {} free {}{}{}{} (busy with other runs, or nodes not UP)", req.tp, unit,
      req.tp > 1 ? "s" : "", NeedText(req), req.allow_multi_host ? "" : " on one host");
  return result;
}

}  // namespace breakeven::scheduler
