#include "pickle_source.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "mmkd/core/error.h"
#include "mmkd/core/input_file.h"

namespace mmkd::data::detail {

void ByteSource::truncated(const char* what) const {
  MMKD_FAIL("truncated pickle (ended at byte ", size_, " while reading ", what, ")");
}

void ByteSource::require(uint64_t n, const char* what) const {
  if (n > remaining()) truncated(what);
}

void ByteSource::read(void* dst, uint64_t n, const char* what) {
  require(n, what);
  if (n == 0) return;
  // A short read means the file shrank under us: report it as the truncation it is.
  if (!read_raw(dst, n)) truncated(what);
  position_ += n;
}

namespace {
constexpr size_t kFileBufferBytes = size_t{1} << 20;
}

FileSource FileSource::open(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) MMKD_FAIL(path, ": no such file");
    MMKD_FAIL(path, ": cannot open (", std::strerror(errno), ")");
  }
  require_regular_file(path, "a pickle file");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  MMKD_CHECK(file != nullptr, path, ": cannot open (", std::strerror(errno), ")");
  std::setvbuf(file, nullptr, _IOFBF, kFileBufferBytes);
  return FileSource(file, static_cast<uint64_t>(info.st_size));
}

FileSource::FileSource(std::FILE* file, uint64_t size) : ByteSource(size), file_(file) {}

FileSource::FileSource(FileSource&& other) noexcept : ByteSource(other), file_(other.file_) {
  other.file_ = nullptr;
}

FileSource::~FileSource() {
  if (file_ != nullptr) std::fclose(file_);
}

bool FileSource::read_raw(void* dst, uint64_t n) { return std::fread(dst, 1, n, file_) == n; }

bool MemorySource::read_raw(void* dst, uint64_t n) {
  std::memcpy(dst, data_ + position(), n);
  return true;
}

}  // namespace mmkd::data::detail
