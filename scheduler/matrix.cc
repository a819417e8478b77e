#include "scheduler/matrix.h"

#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <span>

#include "engine/catalog.h"
#include "engine/sharding.h"

namespace breakeven::scheduler {

namespace {

using StringList = std::span<const std::string_view>;

constexpr std::string_view kMatrixFields[] = {
    "name",    "description",      "models",       "workloads",    "tensor_parallel",
    "devices", "allow_multi_host", "dtype",        "kv_cache_mib", "load",
    "slo",     "repeats",          "max_attempts", "schedule"};
constexpr std::string_view kModelFields[] = {"name", "weights"};
constexpr std::string_view kWorkloadFields[] = {"name", "input_tokens", "output_tokens", "n",
                                                "prefix_tokens"};
constexpr std::string_view kLoadFields[] = {"pattern",      "concurrency",  "rates",
                                            "sweep_points", "search_steps", "warmup_s",
                                            "duration_s",   "max_requests", "max_concurrency"};
constexpr std::string_view kDTypes[] = {"f32", "bf16", "f16"};

// One entry of a YAML map, its key kept for the key's line.
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

struct Fields {
  std::vector<Field> entries;

  const Field* Find(std::string_view key) const {
    for (const Field& f : entries) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
};

// An element of a field that takes a list or a single value, with its path ("devices[1]").
struct Item {
  YAML::Node node;
  std::string path;
};

std::string Join(std::string_view parent, std::string_view child) {
  return parent.empty() ? std::string(child) : fmt::format("{}.{}", parent, child);
}

std::string_view Kind(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a map";
  if (n.IsNull()) return "empty";
  return "a scalar";
}

// Reads a matrix file into a MatrixSpec. Every error carries "source:line: path: ".
class MatrixParser {
 public:
  explicit MatrixParser(std::string_view source) : source_(source) {}

  Result<MatrixSpec> Parse(const YAML::Node& root);

 private:
  int Line(const YAML::Node& n) const { return n.Mark().is_null() ? 1 : n.Mark().line + 1; }

  template <typename... Args>
  Status Error(const YAML::Node& at, std::string_view path, fmt::format_string<Args...> f,
               Args&&... args) const {
    std::string message = fmt::format(f, std::forward<Args>(args)...);
    if (path.empty()) return InvalidArgument("{}:{}: {}", source_, Line(at), message);
    return InvalidArgument("{}:{}: {}: {}", source_, Line(at), path, message);
  }

  // The entries of a map whose keys must be among `allowed` (any key when empty); `what` names
  // the map in messages ("'x' is not a load field (...)").
  Result<Fields> ReadMap(const YAML::Node& map, std::string_view path, std::string_view what,
                         StringList allowed) const;
  Result<std::string> String(const YAML::Node& n, std::string_view path, bool allow_empty) const;
  Result<int64_t> Int(const YAML::Node& n, std::string_view path, int64_t min, int64_t max) const;
  Result<double> Number(const YAML::Node& n, std::string_view path) const;
  Result<bool> Bool(const YAML::Node& n, std::string_view path) const;
  // A list, or a single scalar standing for a list of one.
  Result<std::vector<Item>> Items(const YAML::Node& n, std::string_view path,
                                  std::string_view what) const;
  // Turns an error of a Validate() ("field[i]: message") into one at that field's node.
  Status Locate(const Status& s, const Fields& fields, const YAML::Node& fallback,
                std::string_view parent,
                const std::map<std::string, std::string, std::less<>>& renames = {}) const;

  Status ParseModels(const YAML::Node& n, MatrixSpec& spec);
  Status ParseWorkloads(const YAML::Node& n, MatrixSpec& spec);
  Result<bench::WorkloadSpec> ParseWorkloadMap(const YAML::Node& n, const std::string& path);
  Status ParseTensorParallel(const YAML::Node& n, MatrixSpec& spec);
  Status ParseDevices(const YAML::Node& n, MatrixSpec& spec);
  Status ParseLoad(const YAML::Node& n, bench::LoadPlan& plan);
  Status ParseSloField(const YAML::Node& n, bench::Slo& slo);
  Status CheckSharding(const MatrixSpec& spec) const;

  std::string source_;
  std::vector<Item> model_items_;  // parallel to spec.models: where each was given
  std::vector<Item> tp_items_;     // parallel to spec.tensor_parallel
};

Result<Fields> MatrixParser::ReadMap(const YAML::Node& map, std::string_view path,
                                     std::string_view what, StringList allowed) const {
  if (!map.IsMap()) return Error(map, path, "must be a map, not {}", Kind(map));
  Fields fields;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      return Error(kv.first, path, "a key must be a name, not {}", Kind(kv.first));
    }
    std::string key = kv.first.Scalar();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Error(kv.first, path, "'{}' is not a {} field ({})", key, what,
                   fmt::join(allowed, ", "));
    }
    if (const Field* first = fields.Find(key)) {
      return Error(kv.first, path, "'{}' is given twice (first on line {})", key,
                   Line(first->key_node));
    }
    // An empty value is reported at its key: yaml-cpp marks it where the next token begins.
    if (kv.second.IsNull()) {
      return Error(kv.first, Join(path, key), "has no value (give one or leave the field out)");
    }
    fields.entries.push_back({key, kv.first, kv.second});
  }
  return fields;
}

Result<std::string> MatrixParser::String(const YAML::Node& n, std::string_view path,
                                         bool allow_empty) const {
  if (!n.IsScalar()) return Error(n, path, "must be a string, not {}", Kind(n));
  if (!allow_empty && n.Scalar().empty()) return Error(n, path, "must not be empty");
  return n.Scalar();
}

Result<int64_t> MatrixParser::Int(const YAML::Node& n, std::string_view path, int64_t min,
                                  int64_t max) const {
  if (!n.IsScalar()) return Error(n, path, "must be an integer, not {}", Kind(n));
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) return Error(n, path, "{} is out of range", s);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Error(n, path, "'{}' is not an integer", s);
  }
  if (v < min) return Error(n, path, "must be at least {} (got {})", min, v);
  if (v > max) return Error(n, path, "must be at most {} (got {})", max, v);
  return v;
}

Result<double> MatrixParser::Number(const YAML::Node& n, std::string_view path) const {
  if (!n.IsScalar()) return Error(n, path, "must be a number, not {}", Kind(n));
  const std::string& s = n.Scalar();
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) {
    return Error(n, path, "'{}' is not a number", s);
  }
  return v;
}

Result<bool> MatrixParser::Bool(const YAML::Node& n, std::string_view path) const {
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    return Error(n, path, "must be true or false");
  }
  return v;
}

Result<std::vector<Item>> MatrixParser::Items(const YAML::Node& n, std::string_view path,
                                              std::string_view what) const {
  std::vector<Item> items;
  if (n.IsScalar()) {
    items.push_back({n, std::string(path)});
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) items.push_back({n[i], fmt::format("{}[{}]", path, i)});
  } else {
    return Error(n, path, "must be a list of {}, not {}", what, Kind(n));
  }
  if (items.empty()) return Error(n, path, "must list at least one {}", what);
  return items;
}

Status MatrixParser::Locate(const Status& s, const Fields& fields, const YAML::Node& fallback,
                            std::string_view parent,
                            const std::map<std::string, std::string, std::less<>>& renames) const {
  if (s.ok()) return s;
  std::string_view m = s.message();
  size_t colon = m.find(": ");
  if (colon == std::string_view::npos) return Error(fallback, parent, "{}", m);
  std::string_view field = m.substr(0, colon);
  std::string_view rest = m.substr(colon + 2);
  std::optional<size_t> index;
  if (size_t bracket = field.find('['); bracket != std::string_view::npos) {
    size_t i = 0;
    std::from_chars(field.data() + bracket + 1, field.data() + field.size(), i);
    index = i;
    field = field.substr(0, bracket);
  }
  std::string key(field);
  if (auto it = renames.find(key); it != renames.end()) key = it->second;
  std::string path = Join(parent, key);
  const Field* f = fields.Find(key);
  if (f == nullptr) return Error(fallback, path, "{}", rest);
  if (index && f->value.IsSequence() && *index < f->value.size()) {
    return Error(f->value[*index], fmt::format("{}[{}]", path, *index), "{}", rest);
  }
  return Error(f->value, path, "{}", rest);
}

Status MatrixParser::ParseModels(const YAML::Node& n, MatrixSpec& spec) {
  BE_ASSIGN_OR_RETURN(std::vector<Item> items, Items(n, "models", "model"));
  for (const Item& item : items) {
    ModelChoice m;
    YAML::Node name_node = item.node;
    std::string name_path = item.path;
    if (item.node.IsMap()) {
      BE_ASSIGN_OR_RETURN(Fields f, ReadMap(item.node, item.path, "model", kModelFields));
      const Field* name = f.Find("name");
      if (name == nullptr) return Error(item.node, item.path, "name is required");
      name_node = name->value;
      name_path = Join(item.path, "name");
      BE_ASSIGN_OR_RETURN(m.name, String(name->value, name_path, false));
      if (const Field* w = f.Find("weights")) {
        BE_ASSIGN_OR_RETURN(m.weights, String(w->value, Join(item.path, "weights"), false));
      }
    } else {
      BE_ASSIGN_OR_RETURN(m.name, String(item.node, item.path, false));
    }
    if (m.weights == "dummy" && !engine::FindModel(m.name).ok()) {
      std::vector<std::string_view> known;
      for (const engine::CatalogEntry& e : engine::Catalog()) known.push_back(e.config.name);
      return Error(name_node, name_path,
                   "'{}' is not a catalog model ({}); for other models give {{name, weights}}",
                   m.name, fmt::join(known, ", "));
    }
    for (size_t i = 0; i < spec.models.size(); ++i) {
      if (spec.models[i].name == m.name && spec.models[i].weights == m.weights) {
        return Error(item.node, item.path, "model '{}' is listed twice (also {} on line {})",
                     m.name, model_items_[i].path, Line(model_items_[i].node));
      }
    }
    spec.models.push_back(std::move(m));
    model_items_.push_back(item);
  }
  return Status::Ok();
}

Result<bench::WorkloadSpec> MatrixParser::ParseWorkloadMap(const YAML::Node& n,
                                                           const std::string& path) {
  BE_ASSIGN_OR_RETURN(Fields f, ReadMap(n, path, "workload", kWorkloadFields));
  bench::WorkloadSpec w;
  for (std::string_view required : {"name", "input_tokens", "output_tokens"}) {
    if (f.Find(required) == nullptr) return Error(n, path, "{} is required", required);
  }
  BE_ASSIGN_OR_RETURN(w.name, String(f.Find("name")->value, Join(path, "name"), false));
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  BE_ASSIGN_OR_RETURN(w.input_tokens,
                      Int(f.Find("input_tokens")->value, Join(path, "input_tokens"), kMin, kMax));
  BE_ASSIGN_OR_RETURN(w.output_tokens,
                      Int(f.Find("output_tokens")->value, Join(path, "output_tokens"), kMin, kMax));
  if (const Field* p = f.Find("prefix_tokens")) {
    BE_ASSIGN_OR_RETURN(w.prefix_tokens, Int(p->value, Join(path, "prefix_tokens"), kMin, kMax));
  }
  if (const Field* s = f.Find("n")) {
    BE_ASSIGN_OR_RETURN(w.samples, Int(s->value, Join(path, "n"), std::numeric_limits<int>::min(),
                                       std::numeric_limits<int>::max()));
  }
  BE_RETURN_IF_ERROR(Locate(w.Validate(), f, n, path, {{"samples", "n"}}));
  return w;
}

Status MatrixParser::ParseWorkloads(const YAML::Node& n, MatrixSpec& spec) {
  struct Origin {
    std::string path;
    int line;
  };
  std::map<std::string, Origin, std::less<>> seen;  // workload name -> the entry that gave it
  BE_ASSIGN_OR_RETURN(std::vector<Item> items, Items(n, "workloads", "workload"));
  for (const Item& item : items) {
    std::vector<bench::WorkloadSpec> expanded;
    std::string origin = item.path;
    if (item.node.IsMap()) {
      BE_ASSIGN_OR_RETURN(bench::WorkloadSpec w, ParseWorkloadMap(item.node, item.path));
      expanded.push_back(std::move(w));
    } else {
      BE_ASSIGN_OR_RETURN(std::string name, String(item.node, item.path, false));
      Result<std::vector<bench::WorkloadSpec>> r = bench::ResolveWorkload(name);
      if (!r.ok()) return Error(item.node, item.path, "{}", r.status().message());
      expanded = *std::move(r);
      if (expanded.size() > 1 || expanded[0].name != name) {
        origin = fmt::format("{} ('{}')", item.path, name);
      }
    }
    for (bench::WorkloadSpec& w : expanded) {
      if (auto it = seen.find(w.name); it != seen.end()) {
        return Error(item.node, origin, "workload '{}' is given twice (also by {} on line {})",
                     w.name, it->second.path, it->second.line);
      }
      seen.emplace(w.name, Origin{origin, Line(item.node)});
      spec.workloads.push_back(std::move(w));
    }
  }
  return Status::Ok();
}

Status MatrixParser::ParseTensorParallel(const YAML::Node& n, MatrixSpec& spec) {
  BE_ASSIGN_OR_RETURN(std::vector<Item> items, Items(n, "tensor_parallel", "tp degree"));
  spec.tensor_parallel.clear();
  for (const Item& item : items) {
    BE_ASSIGN_OR_RETURN(int64_t tp, Int(item.node, item.path, 1, std::numeric_limits<int>::max()));
    for (size_t i = 0; i < spec.tensor_parallel.size(); ++i) {
      if (spec.tensor_parallel[i] == tp) {
        return Error(item.node, item.path, "{} is listed twice (also {})", tp, tp_items_[i].path);
      }
    }
    spec.tensor_parallel.push_back(static_cast<int>(tp));
    tp_items_.push_back(item);
  }
  return Status::Ok();
}

Status MatrixParser::ParseDevices(const YAML::Node& n, MatrixSpec& spec) {
  BE_ASSIGN_OR_RETURN(std::vector<Item> items, Items(n, "devices", "device type"));
  spec.devices.clear();
  for (const Item& item : items) {
    BE_ASSIGN_OR_RETURN(std::string device, String(item.node, item.path, false));
    if (std::find(spec.devices.begin(), spec.devices.end(), device) != spec.devices.end()) {
      return Error(item.node, item.path, "'{}' is listed twice", device);
    }
    spec.devices.push_back(std::move(device));
  }
  return Status::Ok();
}

Status MatrixParser::ParseLoad(const YAML::Node& n, bench::LoadPlan& plan) {
  BE_ASSIGN_OR_RETURN(Fields f, ReadMap(n, "load", "load", kLoadFields));
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int kIntMin = std::numeric_limits<int>::min();
  constexpr int kIntMax = std::numeric_limits<int>::max();
  YAML::Node fallback = n;  // where a missing field is reported: the pattern, else the map
  for (const Field& field : f.entries) {
    std::string path = Join("load", field.key);
    const YAML::Node& v = field.value;
    if (field.key == "pattern") {
      BE_ASSIGN_OR_RETURN(std::string name, String(v, path, false));
      std::optional<bench::LoadPattern> p = bench::ParseLoadPattern(name);
      if (!p) {
        return Error(v, path, "'{}' is not one of sync, concurrency, rate, sweep, slo-search",
                     name);
      }
      plan.pattern = *p;
      fallback = v;
    } else if (field.key == "concurrency") {
      BE_ASSIGN_OR_RETURN(std::vector<Item> items, Items(v, path, "concurrency level"));
      plan.concurrency.clear();
      for (const Item& item : items) {
        BE_ASSIGN_OR_RETURN(int64_t c, Int(item.node, item.path, kMin, kMax));
        plan.concurrency.push_back(c);
      }
    } else if (field.key == "rates") {
      BE_ASSIGN_OR_RETURN(std::vector<Item> items, Items(v, path, "rate"));
      plan.rates.clear();
      for (const Item& item : items) {
        BE_ASSIGN_OR_RETURN(double r, Number(item.node, item.path));
        plan.rates.push_back(r);
      }
    } else if (field.key == "sweep_points") {
      BE_ASSIGN_OR_RETURN(plan.sweep_points, Int(v, path, kIntMin, kIntMax));
    } else if (field.key == "search_steps") {
      BE_ASSIGN_OR_RETURN(plan.search_steps, Int(v, path, kIntMin, kIntMax));
    } else if (field.key == "warmup_s") {
      BE_ASSIGN_OR_RETURN(plan.warmup_s, Number(v, path));
    } else if (field.key == "duration_s") {
      BE_ASSIGN_OR_RETURN(plan.duration_s, Number(v, path));
    } else if (field.key == "max_requests") {
      BE_ASSIGN_OR_RETURN(plan.max_requests, Int(v, path, kMin, kMax));
    } else if (field.key == "max_concurrency") {
      BE_ASSIGN_OR_RETURN(plan.max_concurrency, Int(v, path, kMin, kMax));
    }
  }
  return Locate(plan.Validate(), f, fallback, "load");
}

Status MatrixParser::ParseSloField(const YAML::Node& n, bench::Slo& slo) {
  if (n.IsScalar()) {
    Result<bench::Slo> r = bench::ParseSlo(n.Scalar());
    if (!r.ok()) {
      // ParseSlo's errors begin "slo '<text>': "; the path already says slo.
      Status status = r.status();
      std::string_view m = status.message();
      if (m.substr(0, 4) == "slo ") m.remove_prefix(4);
      return Error(n, "slo", "{}", m);
    }
    slo = *std::move(r);
    return Status::Ok();
  }
  if (!n.IsMap()) {
    return Error(n, "slo", "must be a map of terms (ttft_p95: 500ms) or a string, not {}", Kind(n));
  }
  BE_ASSIGN_OR_RETURN(Fields f, ReadMap(n, "slo", "slo", {}));
  for (const Field& field : f.entries) {
    std::string path = Join("slo", field.key);
    BE_ASSIGN_OR_RETURN(std::string limit, String(field.value, path, false));
    std::string text = fmt::format("{}={}", field.key, limit);
    Result<bench::Slo> r = bench::ParseSlo(text);
    if (!r.ok()) {
      Status status = r.status();
      std::string_view m = status.message();
      std::string prefix = fmt::format("slo '{}': ", text);
      if (m.substr(0, prefix.size()) == prefix) m.remove_prefix(prefix.size());
      return Error(field.key_node, path, "{}", m);
    }
    if (r->terms.size() != 1) return Error(field.key_node, path, "must be one term");
    for (const bench::SloTerm& t : slo.terms) {
      if (t.Name() == r->terms[0].Name()) {
        return Error(field.key_node, path, "{} is given twice", t.Name());
      }
    }
    slo.terms.push_back(r->terms[0]);
  }
  return Status::Ok();
}

Status MatrixParser::CheckSharding(const MatrixSpec& spec) const {
  for (const ModelChoice& m : spec.models) {
    if (m.weights != "dummy") continue;  // the shape is known only once a node reads the files
    Result<engine::ModelConfig> config = engine::FindModel(m.name);
    if (!config.ok()) continue;  // reported while parsing models
    for (size_t i = 0; i < spec.tensor_parallel.size(); ++i) {
      Result<engine::ShardPlan> plan = engine::ShardPlan::Make(*config, spec.tensor_parallel[i], 0);
      if (!plan.ok()) {
        return Error(tp_items_[i].node, tp_items_[i].path, "{}", plan.status().message());
      }
    }
  }
  return Status::Ok();
}

Result<MatrixSpec> MatrixParser::Parse(const YAML::Node& root) {
  if (root.IsNull()) {
    return Error(root, "", "the matrix is empty: it needs at least name, models and workloads");
  }
  if (!root.IsMap()) {
    return Error(root, "",
                 "a matrix must be a map of fields (name, models, workloads, ...), not {}",
                 Kind(root));
  }
  BE_ASSIGN_OR_RETURN(Fields f, ReadMap(root, "", "matrix", kMatrixFields));
  for (std::string_view required : {"name", "models", "workloads"}) {
    if (f.Find(required) == nullptr) {
      return Error(root, required, "missing (a matrix needs name, models and workloads)");
    }
  }
  MatrixSpec spec;
  // Fields in file order, so the first error reported is the first in the file.
  for (const Field& field : f.entries) {
    const std::string& key = field.key;
    const YAML::Node& v = field.value;
    if (key == "name") {
      BE_ASSIGN_OR_RETURN(spec.name, String(v, key, false));
    } else if (key == "description") {
      BE_ASSIGN_OR_RETURN(spec.description, String(v, key, true));
    } else if (key == "models") {
      BE_RETURN_IF_ERROR(ParseModels(v, spec));
    } else if (key == "workloads") {
      BE_RETURN_IF_ERROR(ParseWorkloads(v, spec));
    } else if (key == "tensor_parallel") {
      BE_RETURN_IF_ERROR(ParseTensorParallel(v, spec));
    } else if (key == "devices") {
      BE_RETURN_IF_ERROR(ParseDevices(v, spec));
    } else if (key == "allow_multi_host") {
      BE_ASSIGN_OR_RETURN(spec.allow_multi_host, Bool(v, key));
    } else if (key == "dtype") {
      BE_ASSIGN_OR_RETURN(spec.dtype, String(v, key, false));
      if (std::find(std::begin(kDTypes), std::end(kDTypes), spec.dtype) == std::end(kDTypes)) {
        return Error(v, key, "'{}' is not one of {}", spec.dtype, fmt::join(kDTypes, ", "));
      }
    } else if (key == "kv_cache_mib") {
      BE_ASSIGN_OR_RETURN(spec.kv_cache_mib, Int(v, key, 1, std::numeric_limits<int64_t>::max()));
    } else if (key == "load") {
      BE_RETURN_IF_ERROR(ParseLoad(v, spec.load));
    } else if (key == "slo") {
      BE_RETURN_IF_ERROR(ParseSloField(v, spec.slo));
    } else if (key == "repeats") {
      BE_ASSIGN_OR_RETURN(spec.repeats, Int(v, key, 1, std::numeric_limits<int>::max()));
    } else if (key == "max_attempts") {
      BE_ASSIGN_OR_RETURN(spec.max_attempts, Int(v, key, 1, std::numeric_limits<int>::max()));
    } else if (key == "schedule") {
      BE_ASSIGN_OR_RETURN(spec.schedule, String(v, key, false));
    }
  }
  if (tp_items_.empty()) tp_items_.push_back({root, "tensor_parallel"});  // the default [1]
  BE_RETURN_IF_ERROR(CheckSharding(spec));
  return spec;
}

}  // namespace

std::vector<RunSpec> MatrixSpec::Expand() const {
  std::vector<RunSpec> runs;
  runs.reserve(models.size() * workloads.size() * tensor_parallel.size() * devices.size() *
               static_cast<size_t>(std::max(repeats, 0)));
  for (const ModelChoice& model : models) {
    for (const bench::WorkloadSpec& workload : workloads) {
      for (int tp : tensor_parallel) {
        for (const std::string& device : devices) {
          for (int repeat = 0; repeat < repeats; ++repeat) {
            RunSpec r;
            r.model = model;
            r.workload = workload;
            r.tp = tp;
            r.device_type = device;
            r.allow_multi_host = allow_multi_host;
            r.dtype = dtype;
            r.kv_cache_mib = kv_cache_mib;
            r.load = load;
            r.slo = slo;
            r.repeat = repeat;
            r.max_attempts = max_attempts;
            runs.push_back(std::move(r));
          }
        }
      }
    }
  }
  return runs;
}

Result<MatrixSpec> ParseMatrix(std::string_view yaml, std::string_view source) {
  MatrixParser parser(source);
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(yaml));
    if (docs.empty()) {
      return InvalidArgument(
          "{}:1: the matrix is empty: it needs at least name, models and "
          "workloads",
          source);
    }
    if (docs.size() > 1) {
      return InvalidArgument("{}:{}: a matrix file holds one YAML document; this is a second",
                             source, docs[1].Mark().line + 1);
    }
    return parser.Parse(docs[0]);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("{}:{}: {}", source, e.mark.is_null() ? 1 : e.mark.line + 1,
                           e.msg.empty() ? std::string(e.what()) : e.msg);
  }
}

}  // namespace breakeven::scheduler
