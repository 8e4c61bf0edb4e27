// Writes plain data and numpy arrays as protocol-4 Python pickles that numpy reads back.
#pragma once

#include <string>

#include "mmkd/data/pickle.h"

namespace mmkd::data {

/// Writes `root` (None, bool, int, float, str, bytes, list, tuple, dict, ndarray) to `path` as a
/// protocol-4 pickle, streaming: array data goes from tensor memory straight to the file (a
/// non-contiguous tensor is made contiguous one array at a time). Numeric arrays are written as
/// numpy does (`numpy.core.multiarray._reconstruct` + BUILD with BINBYTES8 data), string arrays as
/// numpy object arrays of str. The file is written atomically (write_file_atomic: a fresh
/// temporary file, renamed over `path`); an I/O failure is an mmkd::Error naming the path.
void write_pickle_file(const PyValue& root, const std::string& path);

/// The same pickle as bytes in memory (tests and small values).
std::string write_pickle_bytes(const PyValue& root);

}  // namespace mmkd::data
