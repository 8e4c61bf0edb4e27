// Where the pickle reader's bytes come from: a buffered file stream or a memory block.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace mmkd::data::detail {

/// A forward-only byte stream of known size. Every read is checked against what remains, so a
/// length field can be validated before anything is allocated for it.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  uint64_t position() const { return position_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - position_; }

  /// Reads exactly n bytes into dst; throws "truncated pickle (ended at byte N while reading
  /// <what>)" when fewer remain.
  void read(void* dst, uint64_t n, const char* what);
  /// Throws the truncation error unless n bytes remain (call before allocating n bytes).
  void require(uint64_t n, const char* what) const;
  uint8_t byte(const char* what) {
    uint8_t b;
    read(&b, 1, what);
    return b;
  }

 protected:
  explicit ByteSource(uint64_t size) : size_(size) {}
  /// Reads exactly n bytes (already checked against size()); returns false on a short read.
  virtual bool read_raw(void* dst, uint64_t n) = 0;

 private:
  [[noreturn]] void truncated(const char* what) const;
  uint64_t size_;
  uint64_t position_ = 0;
};

/// A file read through stdio with a large buffer; reads bigger than the buffer go straight from
/// the kernel into the destination (glibc bypasses its buffer for them), so big payloads are
/// copied once.
class FileSource final : public ByteSource {
 public:
  static FileSource open(const std::string& path);
  FileSource(FileSource&& other) noexcept;
  ~FileSource() override;

 private:
  FileSource(std::FILE* file, uint64_t size);
  bool read_raw(void* dst, uint64_t n) override;
  std::FILE* file_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const void* data, uint64_t size)
      : ByteSource(size), data_(static_cast<const uint8_t*>(data)) {}

 private:
  bool read_raw(void* dst, uint64_t n) override;
  const uint8_t* data_;
};

}  // namespace mmkd::data::detail
