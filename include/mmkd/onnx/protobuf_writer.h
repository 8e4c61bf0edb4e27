// The protobuf wire format, encode side only: enough to write ONNX's messages (varints,
// length-delimited fields, fixed32 floats) without linking libprotobuf, whose copy in the PyPI
// wheel's LibTorch would clash with Debian's (docs/onnx.md, "Why no libprotobuf").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mmkd::onnx {

/// Builds one message's bytes field by field; nested messages are written into their own
/// ProtoWriter and added with message().
class ProtoWriter {
 public:
  /// int32/int64/enum/bool fields (wire type 0). Negative values take ten bytes, as protobuf's.
  void varint(int field, int64_t value);
  /// string and bytes fields (wire type 2).
  void bytes(int field, std::string_view value);
  /// An embedded message (wire type 2).
  void message(int field, const ProtoWriter& nested) { bytes(field, nested.data()); }
  /// float fields (wire type 5, little-endian IEEE 754).
  void fixed32(int field, float value);

  const std::string& data() const { return data_; }

 private:
  void tag(int field, int wire_type);
  void raw_varint(uint64_t value);

  std::string data_;
};

}  // namespace mmkd::onnx
