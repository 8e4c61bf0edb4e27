// The wire format against bytes worked out by hand from the protobuf encoding rules.
#include <gtest/gtest.h>

#include "mmkd/onnx/protobuf_writer.h"

namespace mmkd::onnx {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (const int v : values) out.push_back(static_cast<char>(v));
  return out;
}

TEST(ProtoWriter, EncodesVarintsStringsMessagesAndFloats) {
  ProtoWriter w;
  w.varint(1, 150);  // the protobuf documentation's example: 08 96 01
  EXPECT_EQ(w.data(), bytes({0x08, 0x96, 0x01}));

  ProtoWriter negative;
  negative.varint(3, -1);  // int64 -1: ten bytes, all ones
  EXPECT_EQ(negative.data(),
            bytes({0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));

  ProtoWriter text;
  text.bytes(2, "testing");  // 12 07 74 65 73 74 69 6e 67
  EXPECT_EQ(text.data(), bytes({0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}));

  ProtoWriter outer;
  outer.message(20, w);  // field 20, wire type 2: tag 0xa2 0x01, length 3
  EXPECT_EQ(outer.data(), bytes({0xa2, 0x01, 0x03, 0x08, 0x96, 0x01}));

  ProtoWriter f;
  f.fixed32(2, 1.0f);  // 0x3f800000 little-endian
  EXPECT_EQ(f.data(), bytes({0x15, 0x00, 0x00, 0x80, 0x3f}));
}

}  // namespace
}  // namespace mmkd::onnx
