// NVML (the NVIDIA Management Library), loaded at run time.
//
// The driver installs libnvidia-ml.so.1; the CUDA toolkit ships no NVML header, and a node
// without the driver (or without NVIDIA hardware) must start all the same. So the few functions
// the node agent reads are declared here and looked up with dlopen/dlsym: when the library or a
// symbol is missing, Load returns nothing and the node exports no utilization or power series.
//
// NVML reads need no CUDA context (unlike cudaMemGetInfo) and are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace breakeven::node {

class Nvml {
 public:
  // Opens `library` and initializes NVML. nullptr when it cannot; *why says what failed
  // ("libnvidia-ml.so.1: cannot open shared object file", "nvmlInit_v2 returned 9").
  static std::unique_ptr<Nvml> Load(const std::string& library = "libnvidia-ml.so.1",
                                    std::string* why = nullptr);
  ~Nvml();  // nvmlShutdown, dlclose

  struct Reading {
    std::optional<double> utilization_ratio;  // 0..1, over NVML's last sample period
    std::optional<double> power_watts;
    std::optional<uint64_t> memory_used_bytes;
    std::optional<uint64_t> memory_total_bytes;
  };
  // The device with this CUDA UUID ("GPU-8c1f...") or, when the UUID is empty or unknown to
  // NVML, this NVML index. Fields NVML does not report for the device stay empty.
  Reading Read(const std::string& uuid, uint32_t index) const;

 private:
  struct Api;
  Nvml(void* handle, std::unique_ptr<Api> api);

  void* handle_;
  std::unique_ptr<Api> api_;
};

}  // namespace breakeven::node
