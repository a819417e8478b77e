#include "engine/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

namespace breakeven::engine {

static_assert(std::endian::native == std::endian::little,
              "safetensors files are little-endian; breakeven reads them in place");

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // 100 MiB, as the reference reader
constexpr std::string_view kMetadataKey = "__metadata__";

std::string_view SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

std::optional<DType> ParseSafetensorsDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  return std::nullopt;
}

// A JSON value for an error message, cut short if long. Only flat values are printed in full:
// dumping is recursive, and a hostile header may nest a million levels deep.
std::string Describe(const json& j) {
  if (j.is_structured()) {
    bool flat = j.size() <= 16 &&
                std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_primitive(); });
    if (!flat && j.is_array()) return fmt::format("an array of {} elements", j.size());
    if (!flat) return fmt::format("an object of {} members", j.size());
  }
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr size_t kMax = 64;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

std::optional<uint64_t> AsUInt(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0)
    return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

// "[json.exception.parse_error.101] parse error at ..." -> "parse error at ...".
std::string_view JsonErrorText(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    size_t close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  return what;
}

struct ParsedTensor {
  TensorInfo info;
  uint64_t begin = 0;  // data_offsets, relative to the data section
  uint64_t end = 0;
};

Result<ParsedTensor> ParseTensor(const std::string& path, const std::string& name,
                                 const json& entry, uint64_t data_start, uint64_t data_size) {
  if (!entry.is_object()) {
    return DataLoss(
        "{}: tensor '{}': expected an object with dtype, shape and data_offsets, found {}", path,
        name, Describe(entry));
  }
  ParsedTensor t;
  t.info.name = name;

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) return DataLoss("{}: tensor '{}': missing \"dtype\"", path, name);
  if (!dtype_it->is_string()) {
    return DataLoss("{}: tensor '{}': dtype must be a string, found {}", path, name,
                    Describe(*dtype_it));
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  std::optional<DType> dtype = ParseSafetensorsDType(dtype_name);
  if (!dtype) {
    return InvalidArgument(
        "{}: tensor '{}' has dtype {}; breakeven reads F32, F16 and BF16 safetensors tensors", path,
        name, dtype_name);
  }
  t.info.dtype = *dtype;

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) return DataLoss("{}: tensor '{}': missing \"shape\"", path, name);
  if (!shape_it->is_array()) {
    return DataLoss("{}: tensor '{}': shape must be an array of non-negative integers, found {}",
                    path, name, Describe(*shape_it));
  }
  for (const json& d : *shape_it) {
    std::optional<uint64_t> v = AsUInt(d);
    if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return DataLoss(
          "{}: tensor '{}': shape must be an array of non-negative integers, found {} in {}", path,
          name, Describe(d), Describe(*shape_it));
    }
    t.info.shape.push_back(static_cast<int64_t>(*v));
  }
  std::optional<uint64_t> bytes = TensorByteSize(t.info.shape, t.info.dtype);
  if (!bytes) {
    return DataLoss("{}: tensor '{}': shape {} of {} has more bytes than fit in 64 bits", path,
                    name, ShapeString(t.info.shape), dtype_name);
  }
  t.info.bytes = *bytes;

  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end()) {
    return DataLoss("{}: tensor '{}': missing \"data_offsets\"", path, name);
  }
  const json& offsets = *offsets_it;
  std::optional<uint64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = AsUInt(offsets[0]);
    end = AsUInt(offsets[1]);
  }
  if (!begin || !end) {
    return DataLoss(
        "{}: tensor '{}': data_offsets must be [begin, end], two non-negative integers, found {}",
        path, name, Describe(offsets));
  }
  if (*begin > *end) {
    return DataLoss("{}: tensor '{}': data_offsets [{}, {}] end before they begin", path, name,
                    *begin, *end);
  }
  if (*end - *begin != *bytes) {
    return DataLoss("{}: tensor '{}': data_offsets [{}, {}] do not match shape {} of {} ({} bytes)",
                    path, name, *begin, *end, ShapeString(t.info.shape), dtype_name, *bytes);
  }
  if (*end > data_size) {
    return DataLoss(
        "{}: truncated: tensor '{}' data_offsets [{}, {}] run past the end of the data section "
        "({} bytes after the header)",
        path, name, *begin, *end, data_size);
  }
  t.begin = *begin;
  t.end = *end;
  t.info.offset = data_start + *begin;
  return t;
}

Status ParseMetadata(const std::string& path, const json& entry,
                     std::map<std::string, std::string>* metadata) {
  if (!entry.is_object()) {
    return DataLoss("{}: __metadata__ must be an object of strings, found {}", path,
                    Describe(entry));
  }
  for (const auto& [key, value] : entry.items()) {
    if (!value.is_string()) {
      return DataLoss("{}: __metadata__ '{}' must be a string, found {}", path, key,
                      Describe(value));
    }
    (*metadata)[key] = value.get<std::string>();
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  BE_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  const uint8_t* bytes = file->data();
  const uint64_t size = file->size();
  if (size < 8) {
    return DataLoss(
        "{}: truncated: the file has {} bytes, too few for the 8-byte header length that starts a "
        "safetensors file",
        path, size);
  }
  uint64_t header_len;
  std::memcpy(&header_len, bytes, sizeof(header_len));
  if (header_len > kMaxHeaderBytes) {
    return DataLoss(
        "{}: header length {} is more than the {} bytes (100 MiB) a safetensors header may have; "
        "not a safetensors file?",
        path, header_len, kMaxHeaderBytes);
  }
  if (header_len > size - 8) {
    return DataLoss(
        "{}: truncated: the header length says {} bytes of JSON follow, but the file has only {} "
        "bytes after the 8-byte length",
        path, header_len, size - 8);
  }
  if (header_len < 2) {
    return DataLoss("{}: header length {} is too short for a JSON object (at least 2 bytes)", path,
                    header_len);
  }

  // Duplicate tensor names would silently replace each other in a json object: catch them while
  // parsing.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second) duplicate = key;
    }
    return true;
  };
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  json header;
  try {
    header = json::parse(text, text + header_len, on_event);
  } catch (const json::exception& e) {
    return DataLoss("{}: the {}-byte header is not valid JSON: {}", path, header_len,
                    JsonErrorText(e.what()));
  }
  if (!duplicate.empty()) {
    return DataLoss("{}: the header names '{}' more than once", path, duplicate);
  }
  if (!header.is_object()) {
    return DataLoss("{}: the header must be a JSON object, found {}", path, header.type_name());
  }

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  auto st = std::make_unique<SafetensorsFile>();
  std::vector<ParsedTensor> parsed;
  parsed.reserve(header.size());
  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      BE_RETURN_IF_ERROR(ParseMetadata(path, entry, &st->metadata_));
      continue;
    }
    BE_ASSIGN_OR_RETURN(ParsedTensor t, ParseTensor(path, name, entry, data_start, data_size));
    parsed.push_back(std::move(t));
  }

  // File order; then no two non-empty ranges may share a byte.
  std::sort(parsed.begin(), parsed.end(), [](const ParsedTensor& a, const ParsedTensor& b) {
    return std::tie(a.begin, a.end, a.info.name) < std::tie(b.begin, b.end, b.info.name);
  });
  const ParsedTensor* last = nullptr;  // the non-empty range that ends furthest so far
  for (const ParsedTensor& t : parsed) {
    if (t.begin == t.end) continue;
    if (last != nullptr && t.begin < last->end) {
      return DataLoss(
          "{}: tensors '{}' (data_offsets [{}, {}]) and '{}' (data_offsets [{}, {}]) "
          "overlap",
          path, last->info.name, last->begin, last->end, t.info.name, t.begin, t.end);
    }
    if (last == nullptr || t.end > last->end) last = &t;
  }

  st->tensors_.reserve(parsed.size());
  for (ParsedTensor& t : parsed) {
    st->index_[t.info.name] = st->tensors_.size();
    st->tensors_.push_back(std::move(t.info));
  }
  st->file_ = std::move(file);
  return st;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name == kMetadataKey) {
      return InvalidArgument("{}: a tensor may not be named {}", path, kMetadataKey);
    }
    BE_RETURN_IF_ERROR(CheckTensorToWrite(path, t, &names, SafetensorsDTypeName(t.dtype)));
    const uint64_t bytes = t.data.size();
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = SafetensorsDTypeName(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + bytes});
    header[t.name] = std::move(entry);
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a name or value that is not UTF-8
    return InvalidArgument("{}: cannot write the header: {}", path, JsonErrorText(e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // as the reference writer pads it

  uint64_t header_len = text.size();
  char prefix[8];
  std::memcpy(prefix, &header_len, sizeof(prefix));
  std::vector<std::string_view> parts;
  parts.reserve(tensors.size() + 2);
  parts.emplace_back(prefix, sizeof(prefix));
  parts.emplace_back(text);
  for (const TensorToWrite& t : tensors) parts.emplace_back(t.data);
  return WriteFileAtomically(path, parts);
}

}  // namespace breakeven::engine
