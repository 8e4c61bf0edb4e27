#include "mmkd/core/zip_integrity.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <vector>

#include "mmkd/core/error.h"

namespace mmkd {

namespace {

constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kMaxComment = 0xffff;
constexpr uint64_t kDeflate = 8;
constexpr uint64_t kMaxRecords = 1u << 20;  // a checkpoint holds a few hundred

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

/// Little-endian fields of a byte buffer, bounds-checked against the buffer.
class Fields {
 public:
  Fields(const std::vector<uint8_t>& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  uint64_t get(size_t at, int width) const {
    MMKD_CHECK(at + static_cast<size_t>(width) <= bytes_.size(), path_,
               ": damaged checkpoint (zip directory truncated)");
    uint64_t value = 0;
    for (int i = width - 1; i >= 0; --i) value = (value << 8) | bytes_[at + static_cast<size_t>(i)];
    return value;
  }

 private:
  const std::vector<uint8_t>& bytes_;
  const std::string& path_;
};

class Archive {
 public:
  explicit Archive(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    MMKD_CHECK(in_.is_open(), path, ": cannot open the checkpoint");
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }

  std::vector<CompressedRecord> verify() {
    const Directory directory = find_directory();
    const std::vector<uint8_t> central = read(directory.offset, directory.size);
    const Fields f(central, path_);
    size_t at = 0;
    for (uint64_t i = 0; i < directory.records; ++i) at = verify_record(f, central, at);
    return std::move(compressed_);
  }

 private:
  struct Directory {
    uint64_t records = 0, size = 0, offset = 0;
  };

  std::vector<uint8_t> read(uint64_t offset, uint64_t n) {
    MMKD_CHECK(offset <= size_ && n <= size_ - offset, path_,
               ": damaged checkpoint (a zip structure points past the end of the file)");
    std::vector<uint8_t> bytes(static_cast<size_t>(n));
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n));
    MMKD_CHECK(in_.good(), path_, ": cannot read the checkpoint");
    return bytes;
  }

  /// The end record sits in the last 22 + 65535 bytes; zip64 archives add a locator before it.
  Directory find_directory() {
    MMKD_CHECK(size_ >= kEndSize, path_, ": damaged checkpoint (too short to be a zip archive)");
    const uint64_t tail_size = std::min(size_, kEndSize + kMaxComment);
    const std::vector<uint8_t> tail = read(size_ - tail_size, tail_size);
    const Fields f(tail, path_);
    for (uint64_t at = tail_size - kEndSize + 1; at-- > 0;) {
      if (f.get(at, 4) != kEndSignature) continue;
      Directory d{f.get(at + 10, 2), f.get(at + 12, 4), f.get(at + 16, 4)};
      if (at >= 20 && f.get(at - 20, 4) == kZip64LocatorSignature)
        d = zip64_directory(f.get(at - 20 + 8, 8));
      MMKD_CHECK(d.records <= kMaxRecords, path_, ": damaged checkpoint (", d.records,
                 " zip records)");
      return d;
    }
    MMKD_FAIL(path_, ": damaged checkpoint (no zip end-of-directory record; truncated?)");
  }

  Directory zip64_directory(uint64_t offset) {
    const std::vector<uint8_t> end = read(offset, 56);
    const Fields f(end, path_);
    MMKD_CHECK(f.get(0, 4) == kZip64EndSignature, path_,
               ": damaged checkpoint (bad zip64 end-of-directory record)");
    return {f.get(32, 8), f.get(40, 8), f.get(48, 8)};
  }

  /// Checks the record whose central entry starts at `at`; returns where the next one starts.
  size_t verify_record(const Fields& f, const std::vector<uint8_t>& central, size_t at) {
    MMKD_CHECK(f.get(at, 4) == kCentralSignature, path_,
               ": damaged checkpoint (bad zip directory entry)");
    const uint64_t method = f.get(at + 10, 2);
    const auto stored_crc = static_cast<uint32_t>(f.get(at + 16, 4));
    uint64_t size = f.get(at + 24, 4);
    uint64_t local = f.get(at + 42, 4);
    const size_t name_length = f.get(at + 28, 2), extra_length = f.get(at + 30, 2);
    const size_t comment_length = f.get(at + 32, 2);
    const size_t next = at + 46 + name_length + extra_length + comment_length;
    f.get(next - 1, 1);  // the whole entry lies inside the directory
    const std::string name(central.begin() + static_cast<std::ptrdiff_t>(at + 46),
                           central.begin() + static_cast<std::ptrdiff_t>(at + 46 + name_length));
    if (method != 0) {
      MMKD_CHECK(method == kDeflate, path_, ": damaged checkpoint: record '", name,
                 "' uses zip method ", method, " (LibTorch writes stored or deflated records)");
      compressed_.push_back({name, stored_crc});
      return next;
    }
    apply_zip64_extra(f, at + 46 + name_length, extra_length, f.get(at + 20, 4), size, local);
    const std::vector<uint8_t> header = read(local, 30);
    const Fields h(header, path_);
    MMKD_CHECK(h.get(0, 4) == kLocalSignature, path_, ": damaged checkpoint (record '", name,
               "' has no local header)");
    const uint64_t data = local + 30 + h.get(26, 2) + h.get(28, 2);
    const uint32_t crc = crc_of(data, size);
    MMKD_CHECK(crc == stored_crc, path_, ": damaged checkpoint: record '", name,
               "' fails its CRC check (stored ", std::hex, stored_crc, ", computed ", crc,
               "); the file was changed after it was written");
    return next;
  }

  /// Sizes and offsets of 0xffffffff live in the zip64 extra field (id 1), in this order.
  void apply_zip64_extra(const Fields& f, size_t at, size_t length, uint64_t compressed,
                         uint64_t& size, uint64_t& local) const {
    const size_t end = at + length;
    while (at + 4 <= end) {
      const uint64_t id = f.get(at, 2), n = f.get(at + 2, 2);
      size_t field = at + 4;
      if (id == 1) {
        if (size == 0xffffffffu) size = f.get(field, 8), field += 8;
        if (compressed == 0xffffffffu) field += 8;
        if (local == 0xffffffffu) local = f.get(field, 8);
      }
      at += 4 + n;
    }
  }

  uint32_t crc_of(uint64_t offset, uint64_t n) {
    MMKD_CHECK(offset <= size_ && n <= size_ - offset, path_,
               ": damaged checkpoint (a record runs past the end of the file)");
    std::vector<char> buffer(1 << 20);
    in_.seekg(static_cast<std::streamoff>(offset));
    uint32_t crc = 0;
    while (n > 0) {
      const auto chunk = static_cast<std::streamsize>(std::min<uint64_t>(n, buffer.size()));
      in_.read(buffer.data(), chunk);
      MMKD_CHECK(in_.good(), path_, ": cannot read the checkpoint");
      crc = crc32_update(crc, buffer.data(), static_cast<size_t>(chunk));
      n -= static_cast<uint64_t>(chunk);
    }
    return crc;
  }

  const std::string& path_;
  std::ifstream in_;
  uint64_t size_ = 0;
  std::vector<CompressedRecord> compressed_;
};

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  const auto& table = crc_table();
  const auto* bytes = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::vector<CompressedRecord> verify_zip_crcs(const std::string& path) {
  return Archive(path).verify();
}

}  // namespace mmkd
