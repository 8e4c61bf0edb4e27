// Event mass, chance level, proxy event masks and ideal maps.
#include "mmkd/distill/event_mass.h"

#include <cmath>
#include <limits>

#include "mmkd/core/error.h"
#include "mmkd/core/shape_text.h"

namespace mmkd::distill {

namespace {

void check_mask(const torch::Tensor& mask, int64_t batch, int64_t length, const char* what) {
  MMKD_CHECK(mask.defined() && mask.dim() == 2 && mask.size(0) == batch && mask.size(1) == length,
             what, " must be [", batch, ",", length, "], got ", shape_text(mask));
}

// Bool [B,Tq,Tk]: key k is visible to row (b, q). key_padding [B,Tk] true = padded; attn_mask
// [Tq,Tk] additive float (-inf = masked) or bool (true = masked).
torch::Tensor visible_keys(int64_t batch, int64_t tq, int64_t tk, const torch::Tensor& key_padding,
                           const torch::Tensor& attn_mask, const torch::Device& device) {
  auto visible =
      torch::ones({batch, tq, tk}, torch::TensorOptions().dtype(torch::kBool).device(device));
  if (key_padding.defined()) {
    check_mask(key_padding, batch, tk, "key_padding");
    visible = visible & key_padding.to(device, torch::kBool).logical_not().unsqueeze(1);
  }
  if (attn_mask.defined()) {
    MMKD_CHECK(attn_mask.dim() == 2 && attn_mask.size(0) == tq && attn_mask.size(1) == tk,
               "attn_mask must be [", tq, ",", tk, "], got ", shape_text(attn_mask));
    const auto mask = attn_mask.to(device);
    const auto masked = mask.scalar_type() == torch::kBool
                            ? mask
                            : mask == -std::numeric_limits<double>::infinity();
    visible = visible & masked.logical_not().unsqueeze(0);
  }
  return visible;
}

}  // namespace

double EventMass::lift() const {
  if (rows == 0 || chance == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return mass / chance;
}

void EventMass::add(const EventMass& other) {
  const int64_t total = rows + other.rows;
  if (total == 0) return;
  mass = (mass * static_cast<double>(rows) + other.mass * static_cast<double>(other.rows)) /
         static_cast<double>(total);
  chance = (chance * static_cast<double>(rows) + other.chance * static_cast<double>(other.rows)) /
           static_cast<double>(total);
  rows = total;
}

EventMass event_mass(const torch::Tensor& map, const torch::Tensor& query_events,
                     const torch::Tensor& key_events, const torch::Tensor& key_padding,
                     const torch::Tensor& attn_mask) {
  MMKD_CHECK(map.defined() && map.dim() == 3, "event_mass: map must be [B,Tq,Tk], got ",
             shape_text(map));
  const int64_t batch = map.size(0), tq = map.size(1), tk = map.size(2);
  check_mask(query_events, batch, tq, "event_mass: query_events");
  check_mask(key_events, batch, tk, "event_mass: key_events");
  torch::NoGradGuard no_grad;
  const auto device = map.device();
  const auto visible = visible_keys(batch, tq, tk, key_padding, attn_mask, device);
  const auto a = map.detach().to(torch::kDouble);
  const auto event_keys = visible & key_events.to(device, torch::kBool).unsqueeze(1);  // [B,Tq,Tk]
  const auto row_sum = a.sum(-1);
  const auto n_visible = visible.sum(-1).to(torch::kDouble);
  const auto n_events = event_keys.sum(-1).to(torch::kDouble);
  const auto mass_row = (a * event_keys.to(torch::kDouble)).sum(-1) / row_sum.clamp_min(1e-300);
  const auto chance_row = n_events / n_visible.clamp_min(1.0);
  const auto counted = query_events.to(device, torch::kBool) & (row_sum > 0) & (n_visible > 0);
  const auto weight = counted.to(torch::kDouble);
  EventMass result;
  result.rows = counted.sum().item<int64_t>();
  if (result.rows == 0) return result;
  result.mass = (mass_row * weight).sum().item<double>() / static_cast<double>(result.rows);
  result.chance = (chance_row * weight).sum().item<double>() / static_cast<double>(result.rows);
  return result;
}

torch::Tensor downsample_events(const torch::Tensor& events, int64_t kernel, int64_t stride,
                                int64_t out_len, int64_t padding, WindowRule rule) {
  MMKD_CHECK(events.defined() && events.dim() == 2, "downsample_events: events must be [B,T], got ",
             shape_text(events));
  MMKD_CHECK(kernel >= 1 && stride >= 1 && padding >= 0,
             "downsample_events: need kernel >= 1, stride >= 1, padding >= 0, got kernel ", kernel,
             ", stride ", stride, ", padding ", padding);
  const int64_t in = events.size(1);
  // PyTorch's Conv1d output length (dilation 1), as models::conv1d_output_length.
  const int64_t span = in + 2 * padding - kernel;
  const int64_t expected = span < 0 ? 0 : span / stride + 1;
  MMKD_CHECK(out_len == expected, "downsample_events: a Conv1D with kernel ", kernel, ", stride ",
             stride, ", padding ", padding, " maps ", in, " steps to ", expected, ", not ",
             out_len);
  torch::NoGradGuard no_grad;
  const auto x = events.to(torch::kFloat).unsqueeze(1);  // [B,1,T]
  const auto window = torch::ones({1, 1, kernel}, x.options());
  const auto hits = torch::conv1d(x, window, {}, stride, padding).squeeze(1);  // [B,out]
  if (rule == WindowRule::kAny) return hits > 0.5;
  // Real (non-padding) input steps per window; zero padding is not a frame.
  const auto real = torch::conv1d(torch::ones_like(x), window, {}, stride, padding).squeeze(1);
  return hits * 2.0 > real;
}

torch::Tensor resample_events(const torch::Tensor& events, int64_t out_len) {
  MMKD_CHECK(events.defined() && events.dim() == 2, "resample_events: events must be [B,T], got ",
             shape_text(events));
  MMKD_CHECK(out_len > 0 && events.size(1) > 0, "resample_events: lengths must be positive, got ",
             events.size(1), " -> ", out_len);
  const int64_t in = events.size(1);
  std::vector<int64_t> source(static_cast<size_t>(out_len));
  for (int64_t i = 0; i < out_len; ++i) {
    const auto s = static_cast<int64_t>(
        std::floor((i + 0.5) * static_cast<double>(in) / static_cast<double>(out_len)));
    source[static_cast<size_t>(i)] = std::min(s, in - 1);
  }
  const auto index = torch::tensor(source, torch::kLong).to(events.device());
  return events.to(torch::kBool).index_select(1, index);
}

torch::Tensor ideal_map(const torch::Tensor& query_events, const torch::Tensor& key_events,
                        const torch::Tensor& key_padding, const torch::Tensor& attn_mask,
                        NonEventRows non_event) {
  MMKD_CHECK(query_events.defined() && query_events.dim() == 2,
             "ideal_map: query_events must be [B,Tq], got ", shape_text(query_events));
  const int64_t batch = query_events.size(0), tq = query_events.size(1);
  MMKD_CHECK(key_events.defined() && key_events.dim() == 2 && key_events.size(0) == batch,
             "ideal_map: key_events must be [", batch, ",Tk], got ", shape_text(key_events));
  const int64_t tk = key_events.size(1);
  const auto device = query_events.device();
  const auto visible = visible_keys(batch, tq, tk, key_padding, attn_mask, device);
  const auto event_keys = visible & key_events.to(device, torch::kBool).unsqueeze(1);
  // Rows that go to events: event queries (all queries under kEvents), if any event key is seen.
  auto to_events = query_events.to(device, torch::kBool).unsqueeze(-1);  // [B,Tq,1]
  if (non_event == NonEventRows::kEvents) to_events = torch::ones_like(to_events);
  const auto sees_event = event_keys.any(-1, /*keepdim=*/true);
  auto support = torch::where(to_events & sees_event, event_keys, visible);
  if (non_event == NonEventRows::kZero) support = support & to_events;
  const auto weights = support.to(torch::kFloat);
  return weights / weights.sum(-1, /*keepdim=*/true).clamp_min(1.0);
}

}  // namespace mmkd::distill
