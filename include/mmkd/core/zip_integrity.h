// Checking every record of a zip archive (LibTorch's checkpoint format) against its CRC32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mmkd {

/// A record whose CRC covers bytes that first have to be inflated.
struct CompressedRecord {
  std::string name;  ///< full name in the archive, e.g. "archive/code/__torch__.py"
  uint32_t crc = 0;  ///< CRC32 of the inflated bytes, as the central directory stores it
};

/// Reads the central directory of the zip archive at `path` (zip64 included) and recomputes the
/// CRC32 of each stored record. LibTorch's reader does not check these (1.13 loads a flipped
/// byte inside a tensor as a wrong weight), so mmkd does. Throws an mmkd::Error naming `path` (and
/// the record) when the archive is truncated or malformed or a record fails its CRC. LibTorch
/// deflates its small text records (code, debug info): those are returned for the caller to check
/// once inflated.
std::vector<CompressedRecord> verify_zip_crcs(const std::string& path);

/// The CRC-32 (ISO-HDLC, as zip uses) of `n` bytes, continuing from `crc` (0 to start).
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

}  // namespace mmkd
