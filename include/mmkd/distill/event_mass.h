// Attention diagnostics on known event frames (SPEC §3): event mass against its chance level,
// event masks for the student's proxies, and the ideal maps of the ideal-map control.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::distill {

/// How much of an attention map's query rows at event steps falls on key steps inside events.
/// Averages are over the counted rows: (sample, query step) with query_events true, a non-zero
/// map row and at least one visible key; rows of all samples are pooled (not a mean of means).
struct EventMass {
  double mass = 0.0;    ///< mean share of a row's attention on visible event keys
  double chance = 0.0;  ///< mean (visible event keys / visible keys): what a uniform row gives
  int64_t rows = 0;     ///< number of counted rows

  /// mass / chance: 1 = no better than uniform attention. NaN when rows == 0 or chance == 0.
  double lift() const;
  /// Pools another measurement (another batch or layer) into this one, weighted by rows.
  void add(const EventMass& other);
};

/// Event mass of `map` [B,Tq,Tk] (rows sum to 1 or 0) for bool query_events [B,Tq] and
/// key_events [B,Tk]. Visible keys of row (b, q): not key_padding[b, k] (bool [B,Tk], true =
/// padded; optional) and not masked by attn_mask [Tq,Tk] (optional; additive float with -inf =
/// masked, as the attention module takes, or bool with true = masked). Pass the masks the model
/// used so that the chance level is that of a uniform row over what the row could see. A row's
/// mass is divided by its row sum, so maps that are not exactly normalised are measured fairly.
EventMass event_mass(const torch::Tensor& map, const torch::Tensor& query_events,
                     const torch::Tensor& key_events, const torch::Tensor& key_padding = {},
                     const torch::Tensor& attn_mask = {});

/// How a proxy step's window decides whether it is an event step.
enum class WindowRule {
  kAny,       ///< any real input step of the window is an event (the default)
  kMajority,  ///< more than half of the window's real (non-padding) input steps are events
};

/// Event mask [B,out_len] of a strided Conv1D output (the student's A_S/L_S proxies) from the
/// input's events [B,T_in] bool: output step o covers input steps [o·stride - padding,
/// o·stride - padding + kernel). out_len must be the convolution's output length
/// floor((T_in + 2·padding - kernel) / stride) + 1 (a check that the geometry is the model's).
/// kAny is the default because the proxy step's features depend on every frame of its window,
/// and a short event under a long window would vanish under kMajority; it widens events, and
/// the chance level widens with them, so lift stays fair.
torch::Tensor downsample_events(const torch::Tensor& events, int64_t kernel, int64_t stride,
                                int64_t out_len, int64_t padding = 0,
                                WindowRule rule = WindowRule::kAny);

/// Nearest-neighbour resize of an event mask [B,T_in] to [B,out_len]: output step i takes input
/// step floor((i + 0.5)·T_in / out_len) (half-pixel centres, PyTorch's "nearest-exact"). For
/// masks of strided proxies prefer downsample_events, which never drops a short event.
torch::Tensor resample_events(const torch::Tensor& events, int64_t out_len);

/// What the ideal map puts in a row whose query step is not an event.
enum class NonEventRows {
  kZero,     ///< a zero row: EDAM then constrains only event rows (the default)
  kUniform,  ///< uniform over the visible keys: non-event rows pushed to "attend to nothing"
  kEvents,   ///< like event rows: uniform over the visible event keys
};

/// The ideal-map control's "teacher" [B,Tq,Tk] (float32, on query_events' device): a row at an
/// event query step is uniform over the visible event keys; other rows follow `non_event`; a row
/// that should go to events but sees no event key is uniform over its visible keys; a row with
/// no visible key is zero. Visibility as in event_mass (key_padding, attn_mask optional).
torch::Tensor ideal_map(const torch::Tensor& query_events, const torch::Tensor& key_events,
                        const torch::Tensor& key_padding = {}, const torch::Tensor& attn_mask = {},
                        NonEventRows non_event = NonEventRows::kZero);

}  // namespace mmkd::distill
