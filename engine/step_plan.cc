#include "engine/step_plan.h"

#include <algorithm>
#include <cstring>

namespace breakeven::engine {

namespace {

constexpr uint32_t kMagic = 0x42455350;  // "BESP"

void Put(std::string* out, int32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

void PutVec(std::string* out, const std::vector<int32_t>& v) {
  Put(out, static_cast<int32_t>(v.size()));
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool Get(int32_t* v) {
    if (b_.size() - pos_ < 4) return false;
    std::memcpy(v, b_.data() + pos_, 4);
    pos_ += 4;
    return true;
  }
  bool GetVec(std::vector<int32_t>* v) {
    int32_t n;
    if (!Get(&n) || n < 0 || static_cast<size_t>(n) > (b_.size() - pos_) / 4) return false;
    v->resize(static_cast<size_t>(n));
    std::memcpy(v->data(), b_.data() + pos_, static_cast<size_t>(n) * 4);
    pos_ += static_cast<size_t>(n) * 4;
    return true;
  }
  bool done() const { return pos_ == b_.size(); }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

}  // namespace

StepPlan StepPlan::Stop() {
  StepPlan p;
  p.kind = Kind::kStop;
  p.query_start = {0};
  return p;
}

StepPlan StepPlan::Idle() {
  StepPlan p = Stop();
  p.kind = Kind::kIdle;
  return p;
}

StepPlan StepPlan::FromSchedule(const Schedule& schedule, int64_t block_size) {
  StepPlan p;
  // Block tables only as wide as this step's longest sequence needs: a decode step's plan stays
  // small however long the model's context is.
  int64_t widest = 1;
  for (const ScheduledChunk& c : schedule.chunks) {
    widest = std::max(widest, (c.start + c.count + block_size - 1) / block_size);
  }
  p.max_blocks_per_seq = static_cast<int32_t>(widest);
  p.query_start.push_back(0);
  for (const ScheduledChunk& c : schedule.chunks) {
    const Sequence& s = *c.seq;
    for (int64_t pos = c.start; pos < c.start + c.count; ++pos) {
      p.token_ids.push_back(s.tokens[static_cast<size_t>(pos)]);
      p.positions.push_back(static_cast<int32_t>(pos));
      int32_t block = s.block_table[static_cast<size_t>(pos / block_size)];
      p.slots.push_back(static_cast<int32_t>(block * block_size + pos % block_size));
    }
    p.query_start.push_back(static_cast<int32_t>(p.token_ids.size()));
    p.context_lens.push_back(static_cast<int32_t>(c.start + c.count));
    for (int64_t i = 0; i < widest; ++i) {
      p.block_tables.push_back(static_cast<size_t>(i) < s.block_table.size()
                                   ? s.block_table[static_cast<size_t>(i)]
                                   : 0);
    }
    if (c.samples) p.logit_rows.push_back(static_cast<int32_t>(p.token_ids.size()) - 1);
  }
  for (const auto& [src, dst] : schedule.block_copies) {
    p.copy_src.push_back(src);
    p.copy_dst.push_back(dst);
  }
  return p;
}

std::string StepPlan::Encode() const {
  std::string out;
  Put(&out, static_cast<int32_t>(kMagic));
  Put(&out, static_cast<int32_t>(kind));
  Put(&out, max_blocks_per_seq);
  for (const auto* v : {&token_ids, &positions, &slots, &query_start, &context_lens, &block_tables,
                        &logit_rows, &copy_src, &copy_dst}) {
    PutVec(&out, *v);
  }
  return out;
}

Result<StepPlan> StepPlan::Decode(std::string_view bytes, int64_t num_blocks, int64_t block_size,
                                  int64_t vocab_size) {
  StepPlan p;
  Reader r(bytes);
  int32_t magic = 0, kind = 0;
  if (!r.Get(&magic) || static_cast<uint32_t>(magic) != kMagic || !r.Get(&kind) ||
      !r.Get(&p.max_blocks_per_seq)) {
    return DataLoss("step plan: bad header");
  }
  p.kind = static_cast<Kind>(kind);
  for (auto* v : {&p.token_ids, &p.positions, &p.slots, &p.query_start, &p.context_lens,
                  &p.block_tables, &p.logit_rows, &p.copy_src, &p.copy_dst}) {
    if (!r.GetVec(v)) return DataLoss("step plan: truncated");
  }
  if (!r.done()) return DataLoss("step plan: trailing bytes");
  if (p.kind == Kind::kStop || p.kind == Kind::kIdle) return p;
  if (p.kind != Kind::kForward) return DataLoss("step plan: unknown kind {}", kind);

  const size_t t = p.token_ids.size(), s = p.context_lens.size();
  if (p.positions.size() != t || p.slots.size() != t || p.query_start.size() != s + 1 ||
      p.block_tables.size() != s * static_cast<size_t>(p.max_blocks_per_seq) ||
      p.copy_src.size() != p.copy_dst.size() || p.query_start.front() != 0 ||
      p.query_start.back() != static_cast<int32_t>(t)) {
    return DataLoss("step plan: inconsistent sizes");
  }
  const int64_t slots = num_blocks * block_size;
  for (size_t i = 0; i < t; ++i) {
    if (p.token_ids[i] < 0 || p.token_ids[i] >= vocab_size) {
      return DataLoss("step plan: token id {} outside the vocabulary", p.token_ids[i]);
    }
    if (p.slots[i] < 0 || p.slots[i] >= slots) return DataLoss("step plan: slot out of range");
  }
  for (size_t i = 0; i < s; ++i) {
    int32_t n = p.query_start[i + 1] - p.query_start[i];
    if (n < 0 || p.context_lens[i] < n ||
        p.context_lens[i] > static_cast<int64_t>(p.max_blocks_per_seq) * block_size) {
      return DataLoss("step plan: sequence {} has an impossible length", i);
    }
  }
  for (int32_t b : p.block_tables) {
    if (b < 0 || b >= num_blocks) return DataLoss("step plan: block {} out of range", b);
  }
  for (size_t i = 0; i < p.copy_src.size(); ++i) {
    if (p.copy_src[i] < 0 || p.copy_src[i] >= num_blocks || p.copy_dst[i] < 0 ||
        p.copy_dst[i] >= num_blocks) {
      return DataLoss("step plan: block copy out of range");
    }
  }
  for (int32_t row : p.logit_rows) {
    if (row < 0 || static_cast<size_t>(row) >= t) return DataLoss("step plan: bad logit row");
  }
  return p;
}

}  // namespace breakeven::engine
