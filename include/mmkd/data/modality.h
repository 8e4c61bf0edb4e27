// The three modalities of CMU-MOSEI and their names in files (MulT keys) and in the paper.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace mmkd::data {

/// Order follows the paper's notation (V, A, L); index with modality_index().
enum class Modality { kVideo = 0, kAudio = 1, kText = 2 };

inline constexpr std::array<Modality, 3> kModalities = {Modality::kVideo, Modality::kAudio,
                                                        Modality::kText};

inline constexpr size_t modality_index(Modality m) { return static_cast<size_t>(m); }

/// Key of the modality in MulT/MMSA pickles: "vision", "audio", "text".
std::string modality_key(Modality m);

/// The paper's letter: "V", "A", "L".
std::string modality_letter(Modality m);

/// Parses "video"/"vision"/"v", "audio"/"a", "text"/"language"/"l" (case-insensitive);
/// throws mmkd::Error naming `what` otherwise.
Modality parse_modality(const std::string& name, const std::string& what);

/// Parses a comma-separated list ("audio,text"); an empty text gives an empty list.
std::vector<Modality> parse_modality_list(const std::string& text, const std::string& what);

}  // namespace mmkd::data
