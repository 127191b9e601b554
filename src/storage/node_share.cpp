// SPDX-License-Identifier: Apache-2.0
#include "storage/node_share.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "core/trace.hpp"

namespace cairn::detail {
namespace {

// MPI counts are int: a batch (one piece may exceed the staging bound) goes in slices.
constexpr int64_t kMaxBroadcastBytes = int64_t{1} << 30;
// The writer of a piece reads it for the node when its load stays within this (or the piece's
// size) of the least loaded rank: its read-ahead, and the page cache of the save, may hold it.
constexpr int64_t kWriterSlackBytes = int64_t{1} << 20;

// What a rank tells its node about one piece it needs. The ranks of a node run the same build.
struct WireNeed {
  uint32_t tensor;
  int32_t writer;
  int64_t index;
  int64_t bytes;
};
static_assert(sizeof(WireNeed) == 24);

int64_t need_bytes(const PieceNeed& need) {
  return need.piece->box.volume() * static_cast<int64_t>(dtype_size(need.tensor->dtype));
}

std::string encode_needs(const std::vector<PieceNeed>& needs) {
  std::string bytes(needs.size() * sizeof(WireNeed), '\0');
  for (std::size_t i = 0; i < needs.size(); ++i) {
    const WireNeed w{needs[i].key.tensor, needs[i].key.writer, needs[i].key.index,
                     need_bytes(needs[i])};
    std::memcpy(bytes.data() + i * sizeof(WireNeed), &w, sizeof w);
  }
  return bytes;
}

}  // namespace

NodeShare::NodeShare(const Comm& comm) : node_(comm.node()) {
  if (node_.size() > 1) session_ranks_ = node_.allgather(static_cast<int64_t>(comm.rank()));
}

void NodeShare::plan(std::vector<PieceNeed> needs, int64_t staging_bytes, const Error* earlier) {
  if (node_.size() == 1) {
    if (earlier) throw *earlier;
    return;
  }
  node_.agree(earlier);
  std::sort(needs.begin(), needs.end(),
            [](const PieceNeed& a, const PieceNeed& b) { return a.key < b.key; });
  needs_ = std::move(needs);
  // Every rank of the node sees every rank's needs, and runs the same deterministic choice below.
  const std::vector<std::string> all = node_.allgather(encode_needs(needs_));
  struct Wanted {
    PieceKey key;
    int64_t bytes;
    int rank;  // node rank
  };
  std::vector<Wanted> wanted;
  for (std::size_t r = 0; r < all.size(); ++r)
    for (std::size_t at = 0; at + sizeof(WireNeed) <= all[r].size(); at += sizeof(WireNeed)) {
      WireNeed w{};
      std::memcpy(&w, all[r].data() + at, sizeof w);
      wanted.push_back({{w.tensor, w.writer, w.index}, w.bytes, static_cast<int>(r)});
    }
  std::sort(wanted.begin(), wanted.end(), [](const Wanted& a, const Wanted& b) {
    return a.key < b.key || (a.key == b.key && a.rank < b.rank);
  });
  const int ranks = node_.size();
  std::vector<int64_t> load(static_cast<std::size_t>(ranks), 0);
  for (std::size_t i = 0; i < wanted.size();) {
    std::size_t j = i;
    while (j < wanted.size() && wanted[j].key == wanted[i].key) ++j;
    if (j - i >= 2) {
      const PieceKey& key = wanted[i].key;
      const int64_t bytes = wanted[i].bytes;
      // The least loaded of the ranks that need it, ties rotating from piece to piece.
      const auto turn = static_cast<int64_t>(shared_.size());
      int best = -1, writer = -1;
      for (std::size_t k = i; k < j; ++k) {
        const int r = wanted[k].rank;
        const auto ru = static_cast<std::size_t>(r);
        if (session_ranks_[ru] == key.writer) writer = r;
        if (best < 0) {
          best = r;
          continue;
        }
        const auto bu = static_cast<std::size_t>(best);
        const int64_t spin_r = (turn + r) % ranks, spin_b = (turn + best) % ranks;
        if (load[ru] < load[bu] || (load[ru] == load[bu] && spin_r < spin_b)) best = r;
      }
      if (writer >= 0 &&
          load[static_cast<std::size_t>(writer)] <=
              load[static_cast<std::size_t>(best)] + std::max(bytes, kWriterSlackBytes))
        best = writer;
      load[static_cast<std::size_t>(best)] += bytes;
      shared_.push_back({key, bytes, best, -1});
    }
    i = j;
  }
  std::stable_sort(shared_.begin(), shared_.end(),
                   [](const Shared& a, const Shared& b) { return a.reader < b.reader; });
  // Rounds of at most half the staging bound per reader: one batch read, one received.
  batch_capacity_ = std::max<int64_t>(staging_bytes / 2, 1);
  batches_.assign(static_cast<std::size_t>(ranks), {});
  for (std::size_t i = 0; i < shared_.size();) {
    Batch batch{i, i, 0};
    while (batch.last < shared_.size() && shared_[batch.last].reader == shared_[i].reader &&
           (batch.last == i || batch.bytes + shared_[batch.last].bytes <= batch_capacity_))
      batch.bytes += shared_[batch.last++].bytes;
    batches_[static_cast<std::size_t>(shared_[i].reader)].push_back(batch);
    i = batch.last;
  }
  for (Shared& sh : shared_) {
    auto it = std::lower_bound(needs_.begin(), needs_.end(), sh.key,
                               [](const PieceNeed& n, const PieceKey& k) { return n.key < k; });
    if (it == needs_.end() || it->key != sh.key) continue;
    sh.need = it - needs_.begin();
    supplied_.insert(it->piece);
  }
}

int64_t NodeShare::queue_own_reads(PackedReadBatch& packed) {
  if (node_.size() == 1) return 0;
  const auto me = static_cast<std::size_t>(node_.rank());
  if (batches_[me].size() != 1) return 0;
  const Batch& b = batches_[me].front();
  for (std::size_t k = b.first; k < b.last; ++k)
    if (!needs_[static_cast<std::size_t>(shared_[k].need)].tensor->packed) return 0;
  own_ = TransientBuffer(static_cast<std::size_t>(b.bytes));
  int64_t at = 0;
  for (std::size_t k = b.first; k < b.last; ++k) {
    const PieceNeed& need = needs_[static_cast<std::size_t>(shared_[k].need)];
    packed.add_copy(need.piece->packed_offset, shared_[k].bytes, need.piece->checksum,
                    &need.tensor->key, &need.piece->box, own_.data() + at);
    at += shared_[k].bytes;
  }
  own_queued_ = true;
  bytes_read_ += b.bytes;
  return b.bytes;
}

void NodeShare::broadcast(std::byte* data, int64_t bytes, int root) const {
  for (int64_t at = 0; at < bytes; at += kMaxBroadcastBytes) {
    const int slice = static_cast<int>(std::min(kMaxBroadcastBytes, bytes - at));
    check_mpi(MPI_Bcast(data + at, slice, MPI_BYTE, root, node_.get()), "MPI_Bcast(shared pieces)");
  }
}

void NodeShare::run(ContainerReader& reader, const Error* earlier) {
  if (node_.size() == 1) {
    if (earlier) throw *earlier;
    return;
  }
  node_.agree(earlier);
  const auto me = static_cast<std::size_t>(node_.rank());
  std::size_t rounds = 0;
  int64_t own_capacity = 0, peer_capacity = 0;
  for (std::size_t q = 0; q < batches_.size(); ++q) {
    rounds = std::max(rounds, batches_[q].size());
    int64_t& capacity = q == me ? own_capacity : peer_capacity;
    for (const Batch& b : batches_[q]) capacity = std::max(capacity, b.bytes);
  }
  // The read-ahead of this rank's packed region, if its own reads did not use it: at the saved
  // job size a reader mostly reads pieces it wrote, in order, so the helper reads the next rounds
  // while this thread broadcasts.
  const std::unique_ptr<PackedPrefetch> prefetch =
      batches_[me].empty() || own_queued_ ? nullptr : reader.take_prefetch();
  TransientBuffer own =
      own_queued_ ? std::move(own_) : TransientBuffer(static_cast<std::size_t>(own_capacity));
  TransientBuffer peer(static_cast<std::size_t>(peer_capacity));
  PhaseTrace trace("restore: node share", reader.rank(), reader.path());
  for (std::size_t round = 0; round < rounds; ++round) {
    std::optional<Error> failure;
    if (round < batches_[me].size() && !own_queued_) {
      try {
        const Batch& b = batches_[me][round];
        std::vector<const PieceNeed*> pieces;  // a reader is one of the ranks that need a piece
        for (std::size_t k = b.first; k < b.last; ++k)
          pieces.push_back(&needs_[static_cast<std::size_t>(shared_[k].need)]);
        read_whole_pieces(reader, pieces, own.data(), batch_capacity_ * 2, prefetch.get());
        bytes_read_ += b.bytes;
      } catch (...) {
        failure.emplace(current_exception_as_error(ErrorContext{.rank = reader.rank()}));
      }
    }
    trace.mark("read for the node", round < batches_[me].size() ? batches_[me][round].bytes : 0);
    // A reader's failure reaches every rank of the node before anyone waits for its broadcast.
    node_.agree(failure ? &*failure : nullptr);
    trace.mark("wait for the node's readers");
    int64_t moved = 0;
    for (std::size_t q = 0; q < batches_.size(); ++q) {
      if (round >= batches_[q].size()) continue;
      const Batch& b = batches_[q][round];
      std::byte* data = q == me ? own.data() : peer.data();
      broadcast(data, b.bytes, static_cast<int>(q));
      if (q != me) bytes_received_ += b.bytes;
      moved += b.bytes;
      int64_t at = 0;
      for (std::size_t k = b.first; k < b.last; ++k) {
        if (shared_[k].need >= 0)
          deliver_piece(needs_[static_cast<std::size_t>(shared_[k].need)], data + at);
        at += shared_[k].bytes;
      }
    }
    trace.mark("broadcast and copy", moved);
  }
}

}  // namespace cairn::detail
