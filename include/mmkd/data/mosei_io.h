// Reading and writing CMU-MOSEI feature pickles in MulT's and MMSA's layouts.
#pragma once

#include <string>

#include "mmkd/data/mosei_data.h"

namespace mmkd::data {

/// Reads a MOSEI-style pickle without executing code. Accepted layouts, per split
/// ('train', 'valid', 'test', each a dict):
///   - MulT (`mosei_senti_data_noalign.pkl`): `text` [N,T,F], `audio` [N,T,F], `vision` [N,T,F],
///     `labels` [N,1,1], optional `id` [N] or [N,k] strings (a row is joined with '|');
///   - MMSA (`unaligned_50.pkl`): the same features with `regression_labels` [N]; other keys
///     (`raw_text`, `text_bert`, `*_lengths`, `classification_labels`, ...) are ignored.
///   - optional `events`: {'vision','audio','text'} -> uint8/bool [N,T_m] (synthetic ground truth).
/// Features become float32 contiguous (one array at a time, the original freed), NaN/±inf are
/// replaced by 0 and counted in `cleaned`; labels become float32 [N] and must lie in [-3,3].
/// Throws mmkd::Error naming the file, split, key and what was expected.
MoseiData load_mosei(const std::string& path);

/// Writes `data` in MulT's layout (float32 features, labels [N,1,1], `id` and `events` when
/// present, events as uint8) to `path` atomically (write_file_atomic: an exclusively created
/// temporary file is written and renamed; on failure it is removed and `path` is left untouched).
void save_mosei(const MoseiData& data, const std::string& path);

}  // namespace mmkd::data
