#include "node/nvml.h"

#include <dlfcn.h>
#include <fmt/format.h>

namespace breakeven::node {

namespace {

// The subset of nvml.h used here, with the ABI of NVML's stable "_v2" entry points.
using nvmlReturn_t = int;  // NVML_SUCCESS = 0
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t kNvmlSuccess = 0;

struct nvmlUtilization_t {
  unsigned int gpu;     // percent of the sample period a kernel was running
  unsigned int memory;  // percent of the sample period memory was read or written
};
struct nvmlMemory_t {  // version 1 of the struct, what nvmlDeviceGetMemoryInfo takes
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

}  // namespace

struct Nvml::Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*by_uuid)(const char*, nvmlDevice_t*) = nullptr;  // optional
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*) = nullptr;  // milliwatts
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
};

std::unique_ptr<Nvml> Nvml::Load(const std::string& library, std::string* why) {
  auto fail = [&](std::string reason) -> std::unique_ptr<Nvml> {
    if (why) *why = std::move(reason);
    return nullptr;
  };
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return fail(err ? err : fmt::format("{}: cannot be opened", library));
  }
  auto api = std::make_unique<Api>();
  auto find = [&](const char* name, auto** fn) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(handle, name));
    return *fn != nullptr;
  };
  const char* missing = nullptr;
  if (!find("nvmlInit_v2", &api->init)) missing = "nvmlInit_v2";
  if (!missing && !find("nvmlShutdown", &api->shutdown)) missing = "nvmlShutdown";
  if (!missing && !find("nvmlDeviceGetHandleByIndex_v2", &api->by_index)) {
    missing = "nvmlDeviceGetHandleByIndex_v2";
  }
  if (!missing && !find("nvmlDeviceGetUtilizationRates", &api->utilization)) {
    missing = "nvmlDeviceGetUtilizationRates";
  }
  if (!missing && !find("nvmlDeviceGetPowerUsage", &api->power)) {
    missing = "nvmlDeviceGetPowerUsage";
  }
  if (!missing && !find("nvmlDeviceGetMemoryInfo", &api->memory)) {
    missing = "nvmlDeviceGetMemoryInfo";
  }
  if (missing) {
    dlclose(handle);
    return fail(fmt::format("{}: no symbol {}", library, missing));
  }
  find("nvmlDeviceGetHandleByUUID", &api->by_uuid);
  if (nvmlReturn_t rc = api->init(); rc != kNvmlSuccess) {
    dlclose(handle);
    return fail(fmt::format("{}: nvmlInit_v2 returned {}", library, rc));
  }
  return std::unique_ptr<Nvml>(new Nvml(handle, std::move(api)));
}

Nvml::Nvml(void* handle, std::unique_ptr<Api> api) : handle_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(handle_);
}

Nvml::Reading Nvml::Read(const std::string& uuid, uint32_t index) const {
  Reading out;
  nvmlDevice_t device = nullptr;
  // CUDA orders devices fastest first, NVML by PCI bus: the UUID names the same device in both.
  bool found = !uuid.empty() && api_->by_uuid && api_->by_uuid(uuid.c_str(), &device) == 0;
  if (!found) found = api_->by_index(index, &device) == kNvmlSuccess;
  if (!found) return out;
  nvmlUtilization_t util{};
  if (api_->utilization(device, &util) == kNvmlSuccess) out.utilization_ratio = util.gpu / 100.0;
  unsigned int milliwatts = 0;
  if (api_->power(device, &milliwatts) == kNvmlSuccess) out.power_watts = milliwatts / 1000.0;
  nvmlMemory_t memory{};
  if (api_->memory(device, &memory) == kNvmlSuccess) {
    out.memory_used_bytes = memory.used;
    out.memory_total_bytes = memory.total;
  }
  return out;
}

}  // namespace breakeven::node
