#include "mmkd/onnx/protobuf_writer.h"

#include <cstring>

namespace mmkd::onnx {

void ProtoWriter::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    data_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  data_.push_back(static_cast<char>(value));
}

void ProtoWriter::tag(int field, int wire_type) {
  raw_varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

void ProtoWriter::varint(int field, int64_t value) {
  tag(field, 0);
  raw_varint(static_cast<uint64_t>(value));
}

void ProtoWriter::bytes(int field, std::string_view value) {
  tag(field, 2);
  raw_varint(value.size());
  data_.append(value.data(), value.size());
}

void ProtoWriter::fixed32(int field, float value) {
  static_assert(sizeof(float) == 4, "IEEE single precision expected");
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  tag(field, 5);
  for (int i = 0; i < 4; ++i) data_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

}  // namespace mmkd::onnx
