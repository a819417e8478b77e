#include <sched.h>

#include <fstream>
#include <sstream>
#include <string>

#include "kernels/device.h"

namespace breakeven::kernels {

namespace {

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t begin = line.find_first_not_of(" \t", colon + 1);
        if (begin != std::string::npos) return line.substr(begin);
      }
    }
  }
  return "CPU";
}

uint64_t MemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024;
  }
  return 0;
}

// cgroup v2 limit of this process, or 0 when there is none.
uint64_t CgroupMemoryLimitBytes() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  if (path.empty()) return 0;
  std::ifstream max("/sys/fs/cgroup" + path + "/memory.max");
  std::string value;
  if (!(max >> value) || value == "max") return 0;
  try {
    return std::stoull(value);
  } catch (...) {
    return 0;
  }
}

uint32_t UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<uint32_t>(CPU_COUNT(&set));
  return 1;
}

}  // namespace

DeviceInfo DescribeCpu() {
  DeviceInfo cpu;
  cpu.kind = DeviceKind::kCpu;
  cpu.index = 0;
  cpu.name = CpuModelName();
  cpu.memory_bytes = MemTotalBytes();
  uint64_t limit = CgroupMemoryLimitBytes();
  if (limit > 0 && (cpu.memory_bytes == 0 || limit < cpu.memory_bytes)) cpu.memory_bytes = limit;
  cpu.compute_units = UsableCores();
  return cpu;
}

}  // namespace breakeven::kernels
