// Shapes in error messages, including the tensor that holds nothing.
#include "mmkd/core/shape_text.h"

#include <gtest/gtest.h>

namespace {

TEST(ShapeText, PrintsSizesOrUndefined) {
  EXPECT_EQ(mmkd::shape_text(torch::zeros({2, 3})), "[2, 3]");
  EXPECT_EQ(mmkd::shape_text(torch::tensor(1.0)), "[]");
  EXPECT_EQ(mmkd::shape_text(torch::Tensor()), "undefined");
}

}  // namespace
