#include "kernels/device.h"

namespace breakeven::kernels {

#ifdef BREAKEVEN_WITH_CUDA
// kernels/cuda/cuda_devices.cu
std::vector<DeviceInfo> ListCudaDevices(std::string* note);
#endif

bool BuiltWithCuda() {
#ifdef BREAKEVEN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

Discovery DiscoverDevices() {
  Discovery out;
#ifdef BREAKEVEN_WITH_CUDA
  out.devices = ListCudaDevices(&out.cuda_note);
#else
  out.cuda_note = "built without the CUDA backend";
#endif
  if (out.devices.empty()) out.devices.push_back(DescribeCpu());
  return out;
}

}  // namespace breakeven::kernels
