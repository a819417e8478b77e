#include "node/scheduler_store.h"

namespace breakeven::node {

Result<std::unique_ptr<SchedulerStore>> SchedulerStore::Connect(const HostPort& scheduler,
                                                                const std::string& token,
                                                                Millis timeout) {
  ClientOptions o;
  o.scheduler = scheduler;
  o.token = token;
  o.role = v1::ROLE_WORKER;
  o.timeout = timeout;
  BE_ASSIGN_OR_RETURN(auto client, SchedulerClient::Connect(o));
  return std::unique_ptr<SchedulerStore>(new SchedulerStore(o, std::move(client)));
}

Status SchedulerStore::Set(const std::string& key, const std::string& value) {
  v1::Envelope request;
  request.mutable_store_set()->set_key(key);
  request.mutable_store_set()->set_value(value);
  BE_ASSIGN_OR_RETURN(v1::Envelope reply, client_->Call(std::move(request)));
  if (!reply.has_store_ack()) return Internal("store set '{}': unexpected reply", key);
  return Status::Ok();
}

Result<std::string> SchedulerStore::Get(const std::string& key, Millis timeout) {
  v1::Envelope request;
  request.mutable_store_get()->set_key(key);
  request.mutable_store_get()->set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  // The scheduler answers when the key appears or its own deadline passes: wait a little longer
  // than that here, so its answer (naming the key) wins over a bare client timeout.
  client_->set_call_timeout(timeout + options_.timeout);
  Result<v1::Envelope> reply = client_->Call(std::move(request));
  client_->set_call_timeout(options_.timeout);
  if (!reply.ok()) return reply.status();
  if (!reply->has_store_value()) return Internal("store get '{}': unexpected reply", key);
  return reply->store_value().value();
}

}  // namespace breakeven::node
