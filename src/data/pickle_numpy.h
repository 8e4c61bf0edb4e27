// numpy's pickle protocol (dtype, _reconstruct + BUILD, _frombuffer, scalar) without numpy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmkd/data/pickle.h"

namespace mmkd::data::detail {

/// Counts the bytes the reader allocates beyond the input so that hostile input cannot make it
/// allocate without bound (each charge is checked against a budget derived from the file size).
class AllocationBudget {
 public:
  explicit AllocationBudget(uint64_t limit) : left_(limit) {}
  void charge(uint64_t bytes, const char* what);

 private:
  uint64_t left_;
};

/// A uint8 buffer of n bytes that will become tensor storage (64-byte aligned by LibTorch).
torch::Tensor allocate_bytes(uint64_t n, AllocationBudget& budget, const char* what);

/// `numpy.dtype(spec, align, copy)`: spec like "f4", "<i8", "U7", "O8", "b1".
NumpyDtype parse_dtype_spec(const std::string& spec);
/// dtype.__setstate__: the byte order and, for flexible types, the item size.
void apply_dtype_state(NumpyDtype& dtype, const PyValue& state);

/// Fills `array` from ndarray.__setstate__'s state (version, shape, dtype, is_fortran, data).
void build_ndarray(NdArray& array, std::vector<PyRef>& object_items, const PyValue& state,
                   AllocationBudget& budget);
/// `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5).
void array_from_buffer(NdArray& array, const PyValue& buffer, const NumpyDtype& dtype,
                       const PyValue& shape, const std::string& order, AllocationBudget& budget);
/// `numpy.core.multiarray.scalar(dtype, bytes)`: a 0-d array.
void array_from_scalar(NdArray& array, const NumpyDtype& dtype, const PyValue& data,
                       AllocationBudget& budget);

/// `_codecs.encode(text, 'latin1')`: protocol 2 stores bytes as the str of their latin-1 code
/// points; this turns the UTF-8 text back into those bytes.
torch::Tensor latin1_bytes(const std::string& utf8, AllocationBudget& budget);

}  // namespace mmkd::data::detail
