// SPDX-License-Identifier: Apache-2.0
// One checkpoint verified by a group of ranks. Rank 0 probes the file (commit mark, manifest size
// and checksum, manifest decoding, which checks coverage and consistency). Then every rank opens
// it, checks a share of the tensor datasets against the manifest (phase A, results allgathered so
// all ranks skip the same broken tensors), and hashes a contiguous run of the pieces and state
// blobs of about equal bytes (phase B). Rank 0 merges the problems in manifest order, so the
// verdict does not depend on the number of ranks.
#include "inspect/verify_engine.hpp"

#include <xxhash.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cairn/inspect/common.hpp"
#include "inspect/summary.hpp"
#include "storage/checksum.hpp"
#include "storage/container_probe.hpp"

namespace cairn::inspect::detail {
namespace {

using nlohmann::json;

constexpr int64_t kItemCost = 4096;  // per-item overhead, in bytes, for dividing the work
constexpr int64_t kMaxPackedGap = int64_t{1} << 20;

struct XxhDeleter {
  void operator()(XXH3_state_t* s) const noexcept { XXH3_freeState(s); }
};

// Problems found by one rank, kept in order of their ordinal (their place in the manifest).
class Collector {
 public:
  explicit Collector(int max) : max_(std::max(max, 0)) {}
  void add(int64_t ordinal, Problem p) {
    ++total_;
    kept_.emplace_back(ordinal, std::move(p));
    if (kept_.size() > 2 * static_cast<std::size_t>(max_) + 64) trim();
  }
  void trim() {
    std::stable_sort(kept_.begin(), kept_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (kept_.size() > static_cast<std::size_t>(max_)) kept_.resize(static_cast<std::size_t>(max_));
  }
  json to_json() {
    trim();
    json items = json::array();
    for (const auto& [ordinal, p] : kept_) items.push_back({ordinal, p.key, p.box, p.message});
    return json{{"total", total_}, {"problems", std::move(items)}};
  }
  void merge(const json& j) {
    total_ += j.at("total").get<int64_t>() - static_cast<int64_t>(j.at("problems").size());
    for (const json& p : j.at("problems"))
      add(p.at(0).get<int64_t>(),
          {p.at(1).get<std::string>(), p.at(2).get<std::string>(), p.at(3).get<std::string>()});
  }
  int64_t total() const noexcept { return total_; }
  std::vector<Problem> first() {
    trim();
    std::vector<Problem> out;
    for (auto& kv : kept_) out.push_back(kv.second);
    return out;
  }

 private:
  int max_;
  int64_t total_ = 0;
  std::vector<std::pair<int64_t, Problem>> kept_;
};

std::string mismatch(uint64_t expected, uint64_t found) {
  return "checksum mismatch: expected " + checksum_to_hex(expected) + ", found " +
         checksum_to_hex(found) + " (the data on disk is damaged)";
}

std::string read_failure(const Error& e) {
  return "cannot read: " + bare_message(e);
}

// Phase B work: a piece of a dataset tensor, or a range of /cairn/packed (packed piece or blob).
struct Item {
  int64_t ordinal;
  const TensorRecord* tensor;  // null for a state blob
  Box piece;
  int64_t packed_offset;  // -1 for dataset pieces
  int64_t bytes;
  uint64_t checksum;
  std::string key;
  std::string box;  // the piece's box, or "rank R" for a state blob
};

struct Tally {
  int64_t pieces = 0;
  int64_t blobs = 0;
  int64_t bytes = 0;
};

void hash_dataset_piece(cairn::detail::ContainerReader& reader, const Item& it, int64_t chunk,
                        std::vector<std::byte>& buffer, Collector& problems) {
  const auto esize = static_cast<int64_t>(dtype_size(it.tensor->dtype));
  std::unique_ptr<XXH3_state_t, XxhDeleter> state(XXH3_createState());
  XXH3_64bits_reset(state.get());
  try {
    for (const Box& sub : split_box(it.piece, esize, chunk)) {
      buffer.resize(static_cast<std::size_t>(sub.volume() * esize));
      reader.read_region(*it.tensor, sub, buffer.data(), sub);
      XXH3_64bits_update(state.get(), buffer.data(), buffer.size());
    }
  } catch (const Error& e) {
    problems.add(it.ordinal, {it.key, it.box, read_failure(e)});
    return;
  }
  const uint64_t found = XXH3_64bits_digest(state.get());
  if (found != it.checksum)
    problems.add(it.ordinal, {it.key, it.box, mismatch(it.checksum, found)});
}

// Packed items, sorted by offset, read in windows of at most `chunk` bytes (a larger item alone,
// streamed).
void hash_packed(cairn::detail::ContainerReader& reader, std::vector<const Item*> items,
                 int64_t chunk, std::vector<std::byte>& buffer, Collector& problems) {
  std::stable_sort(items.begin(), items.end(), [](const Item* a, const Item* b) {
    return a->packed_offset < b->packed_offset;
  });
  std::size_t i = 0;
  while (i < items.size()) {
    const Item& first = *items[i];
    if (first.bytes > chunk) {
      std::unique_ptr<XXH3_state_t, XxhDeleter> state(XXH3_createState());
      XXH3_64bits_reset(state.get());
      try {
        for (int64_t done = 0; done < first.bytes; done += chunk) {
          const int64_t n = std::min(chunk, first.bytes - done);
          buffer.resize(static_cast<std::size_t>(n));
          reader.read_packed(first.packed_offset + done, n, buffer.data());
          XXH3_64bits_update(state.get(), buffer.data(), buffer.size());
        }
        const uint64_t found = XXH3_64bits_digest(state.get());
        if (found != first.checksum)
          problems.add(first.ordinal, {first.key, first.box, mismatch(first.checksum, found)});
      } catch (const Error& e) {
        problems.add(first.ordinal, {first.key, first.box, read_failure(e)});
      }
      ++i;
      continue;
    }
    const int64_t start = first.packed_offset;
    int64_t end = start + first.bytes;
    std::size_t j = i + 1;
    while (j < items.size() && items[j]->bytes <= chunk &&
           items[j]->packed_offset <= end + kMaxPackedGap &&
           std::max(end, items[j]->packed_offset + items[j]->bytes) - start <= chunk) {
      end = std::max(end, items[j]->packed_offset + items[j]->bytes);
      ++j;
    }
    buffer.resize(static_cast<std::size_t>(end - start));
    try {
      reader.read_packed(start, end - start, buffer.data());
      for (std::size_t k = i; k < j; ++k) {
        const Item& it = *items[k];
        const uint64_t found = checksum_bytes(buffer.data() + (it.packed_offset - start),
                                              static_cast<std::size_t>(it.bytes));
        if (found != it.checksum)
          problems.add(it.ordinal, {it.key, it.box, mismatch(it.checksum, found)});
      }
    } catch (const Error& e) {
      for (std::size_t k = i; k < j; ++k)
        problems.add(items[k]->ordinal, {items[k]->key, items[k]->box, read_failure(e)});
    }
    i = j;
  }
}

}  // namespace

void Group::broadcast(wire::Message& message) const {
  if (comm_) wire::broadcast(*comm_, message, 0);
}

std::vector<wire::Message> Group::allgather(const wire::Message& message) const {
  return comm_ ? wire::allgather(*comm_, message) : std::vector<wire::Message>{message};
}

std::vector<wire::Message> Group::gather(const wire::Message& message) const {
  return comm_ ? wire::gather(*comm_, message, 0) : std::vector<wire::Message>{message};
}

void Group::run_agreed(const std::function<void()>& fn) const {
  if (comm_)
    comm_->run_agreed(fn);
  else
    fn();
}

CheckpointVerdict verify_checkpoint(const Group& group, const std::string& path,
                                    const VerifyOptions& options) {
  CheckpointVerdict v;
  v.path = path;
  const int64_t chunk = std::max<int64_t>(options.chunk_bytes, 4096);
  // Rank 0 probes: commit mark, manifest checksum, decoding (coverage, consistency).
  Probe probe;
  wire::Message header;
  group.run_agreed([&] {
    if (group.rank() != 0) return;
    probe = probe_file(path, true);
    header = {{"status", static_cast<int>(probe.status)}};
  });
  group.broadcast(header);
  v.status = static_cast<FileStatus>(header.at("status").get<int>());
  if (v.status != FileStatus::kCommitted) {
    switch (v.status) {
      case FileStatus::kUncommitted:
      case FileStatus::kCorrupt:
        v.verdict = "damaged";
        break;
      default:
        v.verdict = status_name(v.status);
        break;
    }
    if (group.rank() == 0) {
      v.part = probe.part;
      v.problems_total = 1;
      v.problems.push_back(probe.problem);
      if (probe.manifest) v.format_version = format_version(*probe.manifest);
    }
    return v;
  }

  // Every rank opens the file: the reader for data, a probe for the dataset checks.
  std::unique_ptr<cairn::detail::ContainerReader> reader;
  std::optional<cairn::detail::ContainerProbe> file;
  group.run_agreed([&] {
    reader = group.rank() == 0 ? std::move(probe.reader)
                               : std::make_unique<cairn::detail::ContainerReader>(nullptr, path);
    file = cairn::detail::ContainerProbe::reopen(path);
  });
  const Manifest& m = reader->manifest();
  const int rank = group.rank();
  const int nranks = group.size();
  const auto ntensors = static_cast<int64_t>(m.tensors.size());
  Collector problems(options.max_problems);

  // Phase A: tensor datasets (round robin) and the packed dataset (rank 0) against the manifest.
  json found = json::array();
  int64_t datasets_checked = 0;
  group.run_agreed([&] {
    for (int64_t i = rank; i < ntensors; i += nranks) {
      const TensorRecord& t = m.tensors[static_cast<std::size_t>(i)];
      if (t.packed) continue;
      ++datasets_checked;
      if (std::string msg = file->check_tensor_dataset(t); !msg.empty())
        found.push_back({i, t.key, msg});
    }
    if (rank == 0)
      if (std::string msg = file->check_packed_dataset(m); !msg.empty())
        found.push_back({ntensors, "", msg});
  });
  std::vector<bool> bad_tensor(m.tensors.size(), false);
  bool bad_packed = false;
  for (const wire::Message& j :
       group.allgather(wire::Message{{"found", found}, {"checked", datasets_checked}})) {
    if (rank == 0) v.datasets_checked += j.at("checked").get<int64_t>();
    for (const json& f : j.at("found")) {
      const auto ordinal = f.at(0).get<int64_t>();
      if (ordinal == ntensors)
        bad_packed = true;
      else
        bad_tensor[static_cast<std::size_t>(ordinal)] = true;
      if (rank == 0)
        problems.add(ordinal, {f.at(1).get<std::string>(), "", f.at(2).get<std::string>()});
    }
  }

  // Phase B: every piece and blob, in manifest order, split into contiguous runs of equal bytes.
  std::vector<Item> items;
  int64_t ordinal = ntensors + 1;
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    const TensorRecord& t = m.tensors[i];
    const auto esize = static_cast<int64_t>(dtype_size(t.dtype));
    for (const WrittenBox& wb : t.boxes)
      for (const PieceRecord& p : wb.pieces) {
        const int64_t id = ordinal++;
        if (bad_tensor[i] || (t.packed && bad_packed)) continue;
        items.push_back({id, &t, p.box, t.packed ? p.packed_offset : -1, p.box.volume() * esize,
                         p.checksum, t.key, p.box.to_string()});
      }
  }
  for (const StateRecord& s : m.states)
    for (const StateBlob& b : s.blobs) {
      const int64_t id = ordinal++;
      if (bad_packed) continue;
      items.push_back({id, nullptr, Box{}, b.packed_offset, b.bytes, b.checksum, s.key,
                       "rank " + std::to_string(b.rank)});
    }
  double total_weight = 0;
  // The bytes of all items, checked once (the same on every rank): every rank's share, and rank
  // 0's sum of the shares below, then fit in an int64 too.
  group.run_agreed([&] {
    int64_t total_bytes = 0;
    for (const Item& it : items) {
      total_bytes = add_bytes(total_bytes, it.bytes, path, it.key);
      total_weight += static_cast<double>(it.bytes) + kItemCost;
    }
  });
  std::vector<const Item*> dataset_items, packed_items;
  Tally tally;
  double start = 0;
  for (const Item& it : items) {
    const int owner =
        std::min(nranks - 1, static_cast<int>(start / std::max(total_weight, 1.0) * nranks));
    start += static_cast<double>(it.bytes) + kItemCost;
    if (owner != rank) continue;
    (it.packed_offset < 0 ? dataset_items : packed_items).push_back(&it);
    ++(it.tensor ? tally.pieces : tally.blobs);
    tally.bytes += it.bytes;
  }
  group.run_agreed([&] {
    std::vector<std::byte> buffer;
    for (const Item* it : dataset_items) hash_dataset_piece(*reader, *it, chunk, buffer, problems);
    hash_packed(*reader, packed_items, chunk, buffer, problems);
    // Inside the agreement: a close that fails on one rank must not leave the others in the
    // gather below.
    reader->close();
  });

  // Rank 0 merges every rank's tally and problems.
  json mine = rank == 0 ? json{{"total", 0}, {"problems", json::array()}} : problems.to_json();
  mine["tally"] = {tally.pieces, tally.blobs, tally.bytes};
  const std::vector<wire::Message> all = group.gather(mine);
  if (rank != 0) return v;
  // A part's manifest holds only its writers' records (the reader checked that every other
  // writer's record is empty), so the pieces above are the part's: its writers' and its own copy
  // of the replicated tensors and global state.
  v.part = probe.part;
  for (std::size_t r = 0; r < all.size(); ++r) {
    const wire::Message& j = all[r];
    v.pieces_checked += j.at("tally").at(0).get<int64_t>();
    v.blobs_checked += j.at("tally").at(1).get<int64_t>();
    v.bytes_checked += j.at("tally").at(2).get<int64_t>();
    if (r > 0) problems.merge(j);
  }
  v.format_version = format_version(m);
  v.save_counter = m.save_counter;
  v.world_size = m.world_size;
  v.committed_unix = reader->commit_mark().committed_unix;
  v.tensors = static_cast<int64_t>(m.tensors.size());
  v.states = static_cast<int64_t>(m.states.size());
  v.problems_total = problems.total();
  v.problems = problems.first();
  v.verdict = v.problems_total == 0 ? "ok" : "damaged";
  return v;
}

}  // namespace cairn::inspect::detail
