// The device inventory a node reports when it registers.
#pragma once

#include <string>
#include <vector>

#include "kernels/calibration.h"
#include "kernels/device.h"
#include "proto/breakeven.pb.h"

namespace breakeven::node {

v1::Device ToWire(const kernels::DeviceInfo& device);

// Copies a calibration into the wire form, in the units the scheduler stores: GB/s (read + write)
// and TFLOP/s.
void SetCalibration(const kernels::Calibration& calibration, v1::Device* device);

// Measures every device in place, the figures MBU and MFU are fractions of: CUDA devices with
// kernels::CalibrateCuda (each on its own thread; they share nothing), the CPU with
// kernels::CalibrateCpu on its compute_units threads within `cpu_budget_s`. A device that cannot
// be measured keeps 0 (unknown) and the reason is logged; this never fails, so a node starts
// without its roofline rather than not at all. Returns the number of devices measured.
int CalibrateDevices(std::vector<v1::Device>* devices, double cpu_budget_s);

// "1x AMD EPYC 9454P (2 cores, 23.4 GiB)", "8x NVIDIA H100 80GB HBM3 (79.1 GiB each)": for logs.
std::string Summarize(const std::vector<v1::Device>& devices);

}  // namespace breakeven::node
