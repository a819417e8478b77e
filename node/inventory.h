// The device inventory a node reports when it registers.
#pragma once

#include <string>
#include <vector>

#include "kernels/device.h"
#include "proto/breakeven.pb.h"

namespace breakeven::node {

v1::Device ToWire(const kernels::DeviceInfo& device);

// "1x AMD EPYC 9454P (2 cores, 23.4 GiB)", "8x NVIDIA H100 80GB HBM3 (79.1 GiB each)": for logs.
std::string Summarize(const std::vector<v1::Device>& devices);

}  // namespace breakeven::node
