// Element types of weights and activations, and conversions between them.
//
// bf16 is the top half of an fp32 (round-to-nearest-even when narrowing); f16 is IEEE 754
// binary16. Compute on the CPU is fp32; narrower types are storage formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace breakeven {

enum class DType : uint8_t { kF32, kF16, kBF16 };

size_t DTypeSize(DType dtype);
std::string_view DTypeName(DType dtype);  // "f32", "f16", "bf16"
std::optional<DType> ParseDType(std::string_view name);

inline float Bf16ToF32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float F16ToF32(uint16_t v);
uint16_t F32ToF16(float f);

// Converts n elements of `dtype` at src to fp32 at dst.
void ToF32(const void* src, DType dtype, size_t n, float* dst);
// Converts n fp32 elements to `dtype` at dst.
void FromF32(const float* src, DType dtype, size_t n, void* dst);

}  // namespace breakeven
