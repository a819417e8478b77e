#include "engine/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <type_traits>
#include <utility>

namespace breakeven::engine {

static_assert(std::endian::native == std::endian::little,
              "GGUF files are little-endian; breakeven reads them in place");

namespace {

// Metadata value types.
enum ValueType : uint32_t {
  kUInt8 = 0,
  kInt8 = 1,
  kUInt16 = 2,
  kInt16 = 3,
  kUInt32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUInt64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// ggml tensor types breakeven reads.
constexpr uint32_t kGgmlF32 = 0;
constexpr uint32_t kGgmlF16 = 1;
constexpr uint32_t kGgmlBF16 = 30;

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kWriteVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr uint32_t kMaxDims = 4;
// Limits that keep a corrupt file from turning into a huge allocation. Real models have tens of
// metadata keys, a few thousand tensors and vocabularies of a few hundred thousand tokens.
constexpr uint64_t kMaxNameBytes = 65535;                     // keys and tensor names
constexpr uint64_t kMaxStringBytes = uint64_t{256} << 20;     // string values
constexpr uint64_t kMaxCount = uint64_t{1} << 20;             // tensors; metadata key/values
constexpr uint64_t kMaxMetadataElements = uint64_t{1} << 23;  // array elements, all arrays
constexpr int kMaxArrayDepth = 8;
// The smallest encodings: a key/value is a key length, a type and a 1-byte value; a tensor info
// a name length, n_dims, type and offset.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;

std::string_view ValueTypeName(uint32_t type) {
  switch (type) {
    case kUInt8:
      return "UINT8";
    case kInt8:
      return "INT8";
    case kUInt16:
      return "UINT16";
    case kInt16:
      return "INT16";
    case kUInt32:
      return "UINT32";
    case kInt32:
      return "INT32";
    case kFloat32:
      return "FLOAT32";
    case kBool:
      return "BOOL";
    case kString:
      return "STRING";
    case kArray:
      return "ARRAY";
    case kUInt64:
      return "UINT64";
    case kInt64:
      return "INT64";
    case kFloat64:
      return "FLOAT64";
  }
  return "";
}

// Bytes of the smallest value of `type` (a string or array may be longer); 0 if unknown.
uint64_t MinValueBytes(uint32_t type) {
  switch (type) {
    case kUInt8:
    case kInt8:
    case kBool:
      return 1;
    case kUInt16:
    case kInt16:
      return 2;
    case kUInt32:
    case kInt32:
    case kFloat32:
      return 4;
    case kUInt64:
    case kInt64:
    case kFloat64:
    case kString:
      return 8;
    case kArray:
      return 4 + 8;
  }
  return 0;
}

// ggml's tensor types, for messages (ids that ggml has retired are left out).
struct GgmlType {
  uint32_t id;
  std::string_view name;
};
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32"},     {1, "F16"},    {2, "Q4_0"},     {3, "Q4_1"},    {6, "Q5_0"},     {7, "Q5_1"},
    {8, "Q8_0"},    {9, "Q8_1"},   {10, "Q2_K"},    {11, "Q3_K"},   {12, "Q4_K"},    {13, "Q5_K"},
    {14, "Q6_K"},   {15, "Q8_K"},  {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"},
    {20, "IQ4_NL"}, {21, "IQ3_S"}, {22, "IQ2_S"},   {23, "IQ4_XS"}, {24, "I8"},      {25, "I16"},
    {26, "I32"},    {27, "I64"},   {28, "F64"},     {29, "IQ1_M"},  {30, "BF16"},    {34, "TQ1_0"},
    {35, "TQ2_0"},  {39, "MXFP4"},
};

// "Q4_K" for 12; "" if unknown.
std::string_view GgmlTypeName(uint32_t type) {
  for (const GgmlType& t : kGgmlTypes) {
    if (t.id == type) return t.name;
  }
  return "";
}

std::optional<DType> GgmlToDType(uint32_t type) {
  switch (type) {
    case kGgmlF32:
      return DType::kF32;
    case kGgmlF16:
      return DType::kF16;
    case kGgmlBF16:
      return DType::kBF16;
  }
  return std::nullopt;
}

uint32_t DTypeToGgml(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return kGgmlF32;
    case DType::kF16:
      return kGgmlF16;
    case DType::kBF16:
      return kGgmlBF16;
  }
  return kGgmlF32;
}

// "a string", "an unsigned integer", ... for messages.
std::string_view KindName(const GgufValue& v) {
  switch (v.value.index()) {
    case 0:
      return "an unsigned integer";
    case 1:
      return "a signed integer";
    case 2:
      return "a float";
    case 3:
      return "a bool";
    case 4:
      return "a string";
    case 5:
      return "an array";
  }
  return "a value of unknown kind";
}

uint64_t AlignUp(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// A bounds-checked little-endian reader over the mapping; the Read functions return false,
// consuming nothing, when the file ends first.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool Read(T* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // A uint64 length and that many bytes, if there are no more than `max`. When it returns false,
  // *length says why: more than `max`, or more than remain (or the length itself is cut).
  bool ReadString(std::string* out, uint64_t* length, uint64_t max) {
    uint64_t start = pos_;
    *length = 0;
    if (!Read(length)) return false;
    if (*length > remaining() || *length > max) {
      pos_ = start;
      return false;
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), *length);
    pos_ += *length;
    return true;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Reads the header of one file; every error names the file.
class Parser {
 public:
  Parser(const std::string& path, const uint8_t* data, uint64_t size)
      : path_(path), size_(size), in_(data, size) {}

  Reader& in() { return in_; }

  Status Truncated(std::string_view what) const {
    return DataLoss("{}: truncated: {} runs past the end of the file ({} bytes)", path_, what,
                    size_);
  }

  // Reads a value of `type` for metadata key `key`.
  Status ReadValue(uint32_t type, const std::string& key, int depth, GgufValue* out) {
    switch (type) {
      case kUInt8:
        return ReadNumber<uint8_t, uint64_t>(key, out);
      case kInt8:
        return ReadNumber<int8_t, int64_t>(key, out);
      case kUInt16:
        return ReadNumber<uint16_t, uint64_t>(key, out);
      case kInt16:
        return ReadNumber<int16_t, int64_t>(key, out);
      case kUInt32:
        return ReadNumber<uint32_t, uint64_t>(key, out);
      case kInt32:
        return ReadNumber<int32_t, int64_t>(key, out);
      case kUInt64:
        return ReadNumber<uint64_t, uint64_t>(key, out);
      case kInt64:
        return ReadNumber<int64_t, int64_t>(key, out);
      case kFloat32:
        return ReadNumber<float, double>(key, out);
      case kFloat64:
        return ReadNumber<double, double>(key, out);
      case kBool: {
        uint8_t b;
        if (!in_.Read(&b)) return Truncated(fmt::format("metadata key '{}'", key));
        if (b > 1) {
          return DataLoss("{}: metadata key '{}': a BOOL must be 0 or 1, found {}", path_, key, b);
        }
        out->value = b == 1;
        return Status::Ok();
      }
      case kString: {
        std::string s;
        uint64_t length = 0;
        if (!in_.ReadString(&s, &length, kMaxStringBytes)) {
          if (length > kMaxStringBytes && length <= in_.remaining()) {
            return DataLoss("{}: metadata key '{}': a string of {} bytes; breakeven accepts {}",
                            path_, key, length, kMaxStringBytes);
          }
          return Truncated(fmt::format("metadata key '{}' (a string of {} bytes)", key, length));
        }
        out->value = std::move(s);
        return Status::Ok();
      }
      case kArray:
        return ReadArray(key, depth, out);
    }
    return DataLoss("{}: metadata key '{}' has unknown value type {}", path_, key, type);
  }

 private:
  template <typename Stored, typename Wide>
  Status ReadNumber(const std::string& key, GgufValue* out) {
    Stored v;
    if (!in_.Read(&v)) return Truncated(fmt::format("metadata key '{}'", key));
    out->value = static_cast<Wide>(v);
    return Status::Ok();
  }

  Status ReadArray(const std::string& key, int depth, GgufValue* out) {
    if (depth >= kMaxArrayDepth) {
      return DataLoss("{}: metadata key '{}': arrays nested more than {} deep", path_, key,
                      kMaxArrayDepth);
    }
    uint32_t type;
    uint64_t count;
    if (!in_.Read(&type) || !in_.Read(&count)) {
      return Truncated(fmt::format("metadata key '{}' (an array)", key));
    }
    uint64_t min_bytes = MinValueBytes(type);
    if (min_bytes == 0) {
      return DataLoss("{}: metadata key '{}' is an array of unknown value type {}", path_, key,
                      type);
    }
    if (count > in_.remaining() / min_bytes) {
      return Truncated(
          fmt::format("metadata key '{}' (an array of {} {})", key, count, ValueTypeName(type)));
    }
    if (count > kMaxMetadataElements - elements_) {
      return DataLoss(
          "{}: metadata key '{}': an array of {} elements takes the metadata past the {} array "
          "elements breakeven accepts",
          path_, key, count, kMaxMetadataElements);
    }
    elements_ += count;
    GgufValue::Array array(count);
    for (uint64_t i = 0; i < count; ++i) {
      BE_RETURN_IF_ERROR(ReadValue(type, key, depth + 1, &array[i]));
    }
    out->value = std::move(array);
    return Status::Ok();
  }

  const std::string& path_;
  uint64_t size_;
  Reader in_;
  uint64_t elements_ = 0;  // array elements read so far
};

}  // namespace

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  BE_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  const uint64_t size = file->size();
  Parser parser(path, file->data(), size);
  Reader& in = parser.in();

  char magic[4];
  if (!in.Read(&magic)) return parser.Truncated("the 4-byte magic");
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    auto b = [&](int i) { return static_cast<uint8_t>(magic[i]); };
    return DataLoss(
        "{}: not a GGUF file: it starts with bytes {:02x} {:02x} {:02x} {:02x}, expected \"GGUF\" "
        "(47 47 55 46)",
        path, b(0), b(1), b(2), b(3));
  }
  auto gguf = std::make_unique<GgufFile>();
  gguf->file_ = file;  // for path() in the getters' errors
  uint64_t tensor_count, kv_count;
  if (!in.Read(&gguf->version_) || !in.Read(&tensor_count) || !in.Read(&kv_count)) {
    return parser.Truncated("the header (version, tensor count, metadata count)");
  }
  if (gguf->version_ != 2 && gguf->version_ != 3) {
    uint32_t swapped = __builtin_bswap32(gguf->version_);
    return InvalidArgument("{}: GGUF version {}{}; breakeven reads versions 2 and 3", path,
                           gguf->version_,
                           swapped == 2 || swapped == 3 ? " (a big-endian file?)" : "");
  }
  if (tensor_count > kMaxCount) {
    return DataLoss("{}: the header says {} tensors, more than the {} breakeven accepts; corrupt?",
                    path, tensor_count, kMaxCount);
  }
  if (kv_count > kMaxCount) {
    return DataLoss(
        "{}: the header says {} metadata key/values, more than the {} breakeven accepts; corrupt?",
        path, kv_count, kMaxCount);
  }

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    uint64_t key_length = 0;
    uint32_t type;
    if (!in.ReadString(&key, &key_length, kMaxNameBytes)) {
      if (key_length > kMaxNameBytes && key_length <= in.remaining()) {
        return DataLoss("{}: metadata key/value {} of {}: a key of {} bytes; GGUF allows {}", path,
                        i + 1, kv_count, key_length, kMaxNameBytes);
      }
      return parser.Truncated(fmt::format("metadata key/value {} of {}", i + 1, kv_count));
    }
    if (!in.Read(&type)) {
      return parser.Truncated(
          fmt::format("metadata key/value {} of {} ('{}')", i + 1, kv_count, key));
    }
    if (gguf->metadata_.count(key) != 0) {
      return DataLoss("{}: metadata key '{}' appears more than once", path, key);
    }
    GgufValue value;
    BE_RETURN_IF_ERROR(parser.ReadValue(type, key, 0, &value));
    gguf->metadata_.emplace(std::move(key), std::move(value));
  }

  uint64_t alignment = kDefaultAlignment;
  if (gguf->Get(kAlignmentKey) != nullptr) {
    Result<uint64_t> a = gguf->GetUInt(kAlignmentKey);
    if (!a.ok()) return DataLoss("{}", a.status().message());
    if (*a == 0 || *a > kMaxAlignment || (*a & (*a - 1)) != 0) {
      return DataLoss("{}: {} is {}; expected a power of two no larger than {}", path,
                      kAlignmentKey, *a, kMaxAlignment);
    }
    alignment = *a;
  }

  // Each tensor info takes at least kMinTensorInfoBytes of the file: reserve no more than fit.
  gguf->tensors_.reserve(std::min(tensor_count, in.remaining() / kMinTensorInfoBytes));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo t;
    uint64_t name_length = 0;
    if (!in.ReadString(&t.name, &name_length, kMaxNameBytes)) {
      if (name_length > kMaxNameBytes && name_length <= in.remaining()) {
        return DataLoss("{}: tensor info {} of {}: a name of {} bytes; breakeven accepts {}", path,
                        i + 1, tensor_count, name_length, kMaxNameBytes);
      }
      return parser.Truncated(fmt::format("tensor info {} of {}", i + 1, tensor_count));
    }
    auto truncated = [&] {
      return parser.Truncated(
          fmt::format("tensor info {} of {} ('{}')", i + 1, tensor_count, t.name));
    };
    uint32_t n_dims;
    if (!in.Read(&n_dims)) return truncated();
    if (n_dims > kMaxDims) {
      return DataLoss("{}: tensor '{}' has {} dims; GGUF allows at most {}", path, t.name, n_dims,
                      kMaxDims);
    }
    t.shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim;
      if (!in.Read(&dim)) return truncated();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return DataLoss("{}: tensor '{}': dim {} is {}, too large", path, t.name, d, dim);
      }
      t.shape[n_dims - 1 - d] = static_cast<int64_t>(dim);  // GGUF lists the fastest dim first
    }
    uint32_t type;
    uint64_t offset;
    if (!in.Read(&type) || !in.Read(&offset)) return truncated();
    std::optional<DType> dtype = GgmlToDType(type);
    if (!dtype) {
      std::string_view name = GgmlTypeName(type);
      if (name.empty()) {
        return InvalidArgument(
            "{}: tensor '{}' has unknown type {}; breakeven reads F32, F16 and BF16 GGUF tensors",
            path, t.name, type);
      }
      return InvalidArgument(
          "{}: tensor '{}' has type {} ({}); breakeven reads F32, F16 and BF16 GGUF tensors", path,
          t.name, name, type);
    }
    t.dtype = *dtype;
    std::optional<uint64_t> bytes = TensorByteSize(t.shape, t.dtype);
    if (!bytes) {
      return DataLoss("{}: tensor '{}': shape {} of {} has more bytes than fit in 64 bits", path,
                      t.name, ShapeString(t.shape), GgmlTypeName(type));
    }
    t.bytes = *bytes;
    if (offset % alignment != 0) {
      return DataLoss("{}: tensor '{}': offset {} is not a multiple of the alignment {}", path,
                      t.name, offset, alignment);
    }
    t.offset = offset;  // relative to the data section until its start is known
    if (!gguf->index_.emplace(t.name, gguf->tensors_.size()).second) {
      return DataLoss("{}: tensor '{}' appears more than once", path, t.name);
    }
    gguf->tensors_.push_back(std::move(t));
  }

  const uint64_t data_start = AlignUp(in.pos(), alignment);
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(gguf->tensors_.size());
  for (TensorInfo& t : gguf->tensors_) {
    uint64_t relative = t.offset;
    if (data_start > size || relative > size - data_start ||
        t.bytes > size - data_start - relative) {
      return DataLoss(
          "{}: truncated: tensor '{}' ({} bytes at offset {} of the data section, which starts at "
          "byte {}) runs past the end of the file ({} bytes)",
          path, t.name, t.bytes, relative, data_start, size);
    }
    t.offset = data_start + relative;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->bytes < b->bytes;
  });
  const TensorInfo* last = nullptr;  // the non-empty tensor that ends furthest so far
  for (const TensorInfo* t : by_offset) {
    if (t->bytes == 0) continue;
    if (last != nullptr && t->offset < last->offset + last->bytes) {
      return DataLoss(
          "{}: tensors '{}' ({} bytes at offset {} of the data section) and '{}' ({} bytes at "
          "offset {}) overlap",
          path, last->name, last->bytes, last->offset - data_start, t->name, t->bytes,
          t->offset - data_start);
    }
    if (last == nullptr || t->offset + t->bytes > last->offset + last->bytes) last = t;
  }

  return gguf;
}

const TensorInfo* GgufFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue* GgufFile::Get(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {

Result<const GgufValue*> Lookup(const GgufFile& file, std::string_view key) {
  const GgufValue* v = file.Get(key);
  if (v == nullptr) return NotFound("{}: metadata key '{}' is missing", file.path(), key);
  return v;
}

}  // namespace

Result<uint64_t> GgufFile::GetUInt(std::string_view key) const {
  BE_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (const auto* u = std::get_if<uint64_t>(&v->value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v->value)) {
    if (*i >= 0) return static_cast<uint64_t>(*i);
    return InvalidArgument("{}: metadata key '{}' is {}, expected a non-negative integer", path(),
                           key, *i);
  }
  return InvalidArgument("{}: metadata key '{}' is {}, not an integer", path(), key, KindName(*v));
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  BE_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (const auto* d = std::get_if<double>(&v->value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v->value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&v->value)) return static_cast<double>(*i);
  return InvalidArgument("{}: metadata key '{}' is {}, not a number", path(), key, KindName(*v));
}

Result<std::string> GgufFile::GetString(std::string_view key) const {
  BE_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (const auto* s = std::get_if<std::string>(&v->value)) return *s;
  return InvalidArgument("{}: metadata key '{}' is {}, not a string", path(), key, KindName(*v));
}

Result<size_t> GgufFile::GetArrayLength(std::string_view key) const {
  BE_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(*this, key));
  if (const auto* a = std::get_if<GgufValue::Array>(&v->value)) return a->size();
  return InvalidArgument("{}: metadata key '{}' is {}, not an array", path(), key, KindName(*v));
}

namespace {

// Builds the header of a GGUF file.
class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path) {}

  std::string& out() { return out_; }

  template <typename T>
  void Put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    out_.append(bytes, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    out_.append(s);
  }

  // The type a scalar is written as.
  static uint32_t ScalarType(const GgufValue& v) {
    switch (v.value.index()) {
      case 0:
        return std::get<uint64_t>(v.value) <= std::numeric_limits<uint32_t>::max() ? kUInt32
                                                                                   : kUInt64;
      case 1: {
        int64_t i = std::get<int64_t>(v.value);
        return i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max()
                   ? kInt32
                   : kInt64;
      }
      case 2:
        return kFloat32;
      case 3:
        return kBool;
      case 4:
        return kString;
    }
    return kArray;
  }

  // The element type of an array: that of its first element, widened to hold them all.
  Result<uint32_t> ElementType(const std::string& key, const GgufValue::Array& array) {
    if (array.empty()) return kInt32;
    auto is_number = [](const GgufValue& v) { return v.value.index() <= 2; };
    const GgufValue& first = array[0];
    for (size_t i = 1; i < array.size(); ++i) {
      bool same =
          is_number(first) ? is_number(array[i]) : array[i].value.index() == first.value.index();
      if (!same) {
        return InvalidArgument("{}: metadata key '{}': array element {} is {}, but element 0 is {}",
                               path_, key, i, KindName(array[i]), KindName(first));
      }
    }
    if (!is_number(first)) return ScalarType(first);
    bool any_float = false, all_int32 = true, any_negative = false, any_above_int64 = false;
    for (const GgufValue& v : array) {
      if (std::holds_alternative<double>(v.value)) {
        any_float = true;
      } else if (const auto* u = std::get_if<uint64_t>(&v.value)) {
        all_int32 = all_int32 && *u <= std::numeric_limits<int32_t>::max();
        any_above_int64 = any_above_int64 || *u > std::numeric_limits<int64_t>::max();
      } else {
        int64_t i = std::get<int64_t>(v.value);
        all_int32 = all_int32 && i >= std::numeric_limits<int32_t>::min() &&
                    i <= std::numeric_limits<int32_t>::max();
        any_negative = any_negative || i < 0;
      }
    }
    if (any_float) return kFloat32;
    if (all_int32) return kInt32;
    if (!any_above_int64) return kInt64;
    if (!any_negative) return kUInt64;
    return InvalidArgument(
        "{}: metadata key '{}': an integer array with values above 2^63 and below 0 fits neither "
        "INT64 nor UINT64",
        path_, key);
  }

  // Writes `v` as `type` (without the type itself).
  Status PutValue(const std::string& key, uint32_t type, const GgufValue& v, int depth) {
    switch (type) {
      case kUInt32:
        Put(static_cast<uint32_t>(std::get<uint64_t>(v.value)));
        return Status::Ok();
      case kUInt64:  // an array may mix uint64 and non-negative int64 values
        Put(std::holds_alternative<uint64_t>(v.value)
                ? std::get<uint64_t>(v.value)
                : static_cast<uint64_t>(std::get<int64_t>(v.value)));
        return Status::Ok();
      case kInt32:
      case kInt64: {
        int64_t i = std::holds_alternative<uint64_t>(v.value)
                        ? static_cast<int64_t>(std::get<uint64_t>(v.value))
                        : std::get<int64_t>(v.value);
        if (type == kInt32) {
          Put(static_cast<int32_t>(i));
        } else {
          Put(i);
        }
        return Status::Ok();
      }
      case kFloat32: {
        double d = std::visit(
            [](const auto& x) -> double {
              if constexpr (std::is_arithmetic_v<std::decay_t<decltype(x)>>) {
                return static_cast<double>(x);
              } else {
                return 0;
              }
            },
            v.value);
        Put(static_cast<float>(d));
        return Status::Ok();
      }
      case kBool:
        Put<uint8_t>(std::get<bool>(v.value) ? 1 : 0);
        return Status::Ok();
      case kString:
        PutString(std::get<std::string>(v.value));
        return Status::Ok();
      case kArray: {
        if (depth >= kMaxArrayDepth) {
          return InvalidArgument("{}: metadata key '{}': arrays nested more than {} deep", path_,
                                 key, kMaxArrayDepth);
        }
        const auto& array = std::get<GgufValue::Array>(v.value);
        BE_ASSIGN_OR_RETURN(uint32_t element_type, ElementType(key, array));
        Put(element_type);
        Put<uint64_t>(array.size());
        for (const GgufValue& e : array) {
          BE_RETURN_IF_ERROR(PutValue(key, element_type, e, depth + 1));
        }
        return Status::Ok();
      }
    }
    return Internal("{}: metadata key '{}': cannot write value type {}", path_, key, type);
  }

 private:
  const std::string& path_;
  std::string out_;
};

}  // namespace

Status WriteGguf(const std::string& path, const std::vector<GgufKeyValue>& metadata,
                 const std::vector<TensorToWrite>& tensors) {
  Writer w(path);
  w.out().append(kMagic, sizeof(kMagic));
  w.Put(kWriteVersion);
  w.Put<uint64_t>(tensors.size());
  w.Put<uint64_t>(metadata.size());

  uint64_t alignment = kDefaultAlignment;
  std::set<std::string_view> keys;
  for (const GgufKeyValue& kv : metadata) {
    if (kv.key.empty() || kv.key.size() > kMaxNameBytes) {
      return InvalidArgument("{}: a metadata key must have 1 to {} bytes, '{}' has {}", path,
                             kMaxNameBytes, kv.key, kv.key.size());
    }
    if (!keys.insert(kv.key).second) {
      return InvalidArgument("{}: metadata key '{}' is given more than once", path, kv.key);
    }
    w.PutString(kv.key);
    if (kv.key == kAlignmentKey) {
      // Always a UINT32, as GGUF specifies; the data below is laid out to match.
      const auto* u = std::get_if<uint64_t>(&kv.value.value);
      const auto* i = std::get_if<int64_t>(&kv.value.value);
      uint64_t a = u != nullptr ? *u : (i != nullptr && *i > 0 ? static_cast<uint64_t>(*i) : 0);
      if (a == 0 || a > kMaxAlignment || (a & (a - 1)) != 0) {
        return InvalidArgument("{}: {} must be a power of two no larger than {}", path,
                               kAlignmentKey, kMaxAlignment);
      }
      alignment = a;
      w.Put<uint32_t>(kUInt32);
      w.Put(static_cast<uint32_t>(a));
      continue;
    }
    uint32_t type = Writer::ScalarType(kv.value);
    w.Put(type);
    BE_RETURN_IF_ERROR(w.PutValue(kv.key, type, kv.value, 0));
  }

  std::set<std::string_view> names;
  std::vector<uint64_t> padding;  // after each tensor's data
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    if (t.name.size() > kMaxNameBytes) {
      return InvalidArgument("{}: tensor name of {} bytes; breakeven writes at most {}", path,
                             t.name.size(), kMaxNameBytes);
    }
    if (t.shape.size() > kMaxDims) {
      return InvalidArgument("{}: tensor '{}': shape {} has {} dims; GGUF allows at most {}", path,
                             t.name, ShapeString(t.shape), t.shape.size(), kMaxDims);
    }
    BE_RETURN_IF_ERROR(CheckTensorToWrite(path, t, &names, GgmlTypeName(DTypeToGgml(t.dtype))));
    const uint64_t bytes = t.data.size();
    w.PutString(t.name);
    w.Put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) w.Put<uint64_t>(*d);  // fastest first
    w.Put(DTypeToGgml(t.dtype));
    w.Put(offset);
    uint64_t end = offset + bytes;
    offset = AlignUp(end, alignment);
    padding.push_back(offset - end);
  }
  w.out().append(AlignUp(w.out().size(), alignment) - w.out().size(), '\0');

  const std::string zeros(alignment, '\0');
  std::vector<std::string_view> parts;
  parts.reserve(1 + 2 * tensors.size());
  parts.emplace_back(w.out());
  for (size_t i = 0; i < tensors.size(); ++i) {
    parts.emplace_back(tensors[i].data);
    if (padding[i] > 0) parts.emplace_back(zeros.data(), padding[i]);
  }
  return WriteFileAtomically(path, parts);
}

}  // namespace breakeven::engine
