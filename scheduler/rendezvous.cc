#include "scheduler/rendezvous.h"

#include <fmt/format.h>

namespace breakeven::scheduler {

std::string RendezvousStore::GroupOf(uint64_t run_id, uint32_t attempt) {
  return fmt::format("run-{}/{}/", run_id, attempt);
}

void RendezvousStore::OpenGroup(const std::string& group) { open_.insert(group); }

void RendezvousStore::CloseGroup(const std::string& group) {
  open_.erase(group);
  for (auto it = values_.lower_bound(group);
       it != values_.end() && it->first.compare(0, group.size(), group) == 0;) {
    it = values_.erase(it);
  }
  std::vector<Waiter> dropped;
  for (auto it = waiters_.lower_bound(group);
       it != waiters_.end() && it->first.compare(0, group.size(), group) == 0;) {
    for (Waiter& w : it->second) dropped.push_back(std::move(w));
    it = waiters_.erase(it);
  }
  for (Waiter& w : dropped) {
    w.timer->cancel();
    w.reply(Unavailable("run attempt {} has ended", group));
  }
}

std::string RendezvousStore::GroupFor(const std::string& key) const {
  // Groups never nest, so the greatest open group not after `key` is the only candidate.
  auto it = open_.upper_bound(key);
  if (it == open_.begin()) return "";
  --it;
  return key.compare(0, it->size(), *it) == 0 ? *it : "";
}

Status RendezvousStore::Set(const std::string& key, std::string value) {
  if (GroupFor(key).empty()) {
    return PermissionDenied("store key '{}' is not under a live run attempt", key);
  }
  if (!values_.emplace(key, value).second) {
    return AlreadyExists("store key '{}' was already set", key);
  }
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return Status::Ok();
  std::vector<Waiter> ready = std::move(it->second);
  waiters_.erase(it);
  for (Waiter& w : ready) {
    w.timer->cancel();
    w.reply(value);
  }
  return Status::Ok();
}

void RendezvousStore::Get(const std::string& key, Millis timeout, Reply reply) {
  if (GroupFor(key).empty()) {
    reply(PermissionDenied("store key '{}' is not under a live run attempt", key));
    return;
  }
  if (auto it = values_.find(key); it != values_.end()) {
    reply(it->second);
    return;
  }
  const uint64_t id = next_waiter_++;
  auto timer = std::make_shared<asio::steady_timer>(executor_);
  waiters_[key].push_back({id, std::move(reply), timer});
  timer->expires_after(timeout);
  timer->async_wait([this, key, id, timeout](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: answered already
    auto it = waiters_.find(key);
    if (it == waiters_.end()) return;
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end(); ++w) {
      if (w->id != id) continue;
      Reply r = std::move(w->reply);
      list.erase(w);
      if (list.empty()) waiters_.erase(it);
      r(DeadlineExceeded("store key '{}' was not set within {} ms", key, timeout.count()));
      return;
    }
  });
}

size_t RendezvousStore::waiting() const {
  size_t n = 0;
  for (const auto& [key, list] : waiters_) n += list.size();
  return n;
}

}  // namespace breakeven::scheduler
