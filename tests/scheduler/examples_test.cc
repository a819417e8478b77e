// The matrices shipped in examples/ parse, and expand as their comments say.
#include <gtest/gtest.h>

#include "scheduler/matrix.h"
#include "tests/support/process.h"

namespace breakeven::scheduler {
namespace {

MatrixSpec Load(const std::string& name) {
  const std::string path = std::string(BREAKEVEN_SOURCE_DIR) + "/examples/" + name;
  Result<MatrixSpec> m = ParseMatrix(testing::ReadFile(path), name);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? *m : MatrixSpec{};
}

TEST(Examples, DemoIsTwoWorkloadsAtTp1And2) {
  MatrixSpec m = Load("demo.yaml");
  EXPECT_EQ(m.name, "demo");
  EXPECT_EQ(m.Expand().size(), 4u);
  EXPECT_FALSE(m.schedule.has_value());
  EXPECT_EQ(m.load.pattern, bench::LoadPattern::kSweep);
}

TEST(Examples, AlmanacIsTheNineShapesOnTwoGpuTypes) {
  MatrixSpec m = Load("almanac.yaml");
  ASSERT_EQ(m.workloads.size(), 9u);
  EXPECT_EQ(m.workloads[0].input_tokens, 128);
  EXPECT_EQ(m.workloads[0].output_tokens, 1024);
  EXPECT_EQ(m.Expand().size(), 9u * 2 * 2);
  EXPECT_EQ(m.schedule.value_or(""), "0 2 * * *");
}

TEST(Examples, TheReadmesMatrixParses) {
  const std::string readme = testing::ReadFile(std::string(BREAKEVEN_SOURCE_DIR) + "/README.md");
  const size_t start = readme.find("```yaml\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = readme.find("```", start + 8);
  ASSERT_NE(end, std::string::npos);
  Result<MatrixSpec> m = ParseMatrix(readme.substr(start + 8, end - start - 8), "README.md");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->workloads.size(), 9u + 1 + 1 + 1);
}

}  // namespace
}  // namespace breakeven::scheduler
