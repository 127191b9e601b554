// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reading the parts of a saved tensor that a rank needs, in whatever layout it has now, with every
// piece it reads checked against its checksum.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "storage/container_reader.hpp"
#include "storage/overlapped_checks.hpp"

namespace cairn::detail {

/// What the last PackedReadBatch::run() on this thread read: all its bytes, those served by the
/// read-ahead, and of those the ones it read straight into their destinations (for tests and
/// tuning).
struct PackedReadStats {
  int64_t bytes = 0;
  int64_t prefetched_bytes = 0;
  int64_t direct_bytes = 0;
};
PackedReadStats last_packed_read_stats() noexcept;

/// Reads from the packed dataset in few large requests: requests are sorted by offset and merged
/// into windows of bounded size, each window read once.
class PackedReadBatch {
 public:
  using Consumer = std::function<void(const std::byte* data)>;
  /// Queues `bytes` bytes at `offset`, checksummed `checksum`. In errors the request is named by
  /// `key` and `piece` (a tensor piece) or, without a piece, as rank `blob_rank`'s value; `key`
  /// and `piece` must outlive run() (they live in the manifest), and are only formatted on error.
  void add(int64_t offset, int64_t bytes, uint64_t checksum, const std::string* key,
           const Box* piece, int blob_rank, Consumer consume);
  /// Like add(), for bytes that go unchanged to `destination` (a piece contiguous in its target):
  /// no consumer to build, the common case of tens of thousands of small tensors.
  void add_copy(int64_t offset, int64_t bytes, uint64_t checksum, const std::string* key,
                const Box* piece, std::byte* destination);
  /// Local. Reads, verifies and hands every request to its consumer; throws kCorrupt on a
  /// checksum mismatch naming the key and piece. Windows of at most `staging_bytes` (and at most
  /// 16 MiB) are read. Requests inside the reader's read-ahead are served from it (it is taken
  /// once, by the first batch that has requests); with `prefetch`, from that one instead, which
  /// stays usable by later batches whose requests lie at higher offsets.
  void run(ContainerReader& reader, int64_t staging_bytes, PackedPrefetch* prefetch = nullptr);
  /// Room for `requests` requests (one per piece a restore reads from the packed dataset).
  void reserve(std::size_t requests) { requests_.reserve(requests); }
  /// Whether run() may have the read-ahead read plain copies straight into their destinations
  /// (the default); off when two requests may write the same destination.
  void allow_direct_reads(bool allow) noexcept { direct_reads_allowed_ = allow; }
  bool empty() const noexcept { return requests_.empty(); }

 private:
  static constexpr std::size_t kNotDirect = static_cast<std::size_t>(-1);
  struct Request {
    int64_t offset;
    int64_t bytes;
    uint64_t checksum;
    const std::string* key;
    const Box* piece;
    int blob_rank;
    std::byte* destination;  // when set, the bytes are copied there and `consume` is empty
    Consumer consume;
    // Handed to the read-ahead to be read straight into `destination`: its place in the
    // read-ahead's list of direct reads; kNotDirect otherwise.
    std::size_t direct_index = kNotDirect;
  };
  /// Throws kCorrupt naming the request's key and piece unless `bytes` match its checksum.
  static void verify(const ContainerReader& reader, const Request& r, const std::byte* bytes);
  /// The same, given the checksum `found` of its bytes.
  static void verify_checksum(const ContainerReader& reader, const Request& r, uint64_t found);
  static void verify_and_consume(const ContainerReader& reader, Request& r, const std::byte* bytes);
  /// Marks the plain copies that the read-ahead may read straight into their destinations and
  /// hands them to it (requests sorted by offset).
  void plan_direct_reads(PackedPrefetch& prefetch);
  /// Serves the requests that lie in `prefetch`'s chunks and leaves the others queued. With
  /// `last_use`, the helper stops after the last chunk used.
  void consume_prefetched(ContainerReader& reader, PackedPrefetch& prefetch, bool last_use);
  std::vector<Request> requests_;
  bool direct_reads_allowed_ = true;
};

/// Where part of a saved piece goes: `overlap` of a buffer laid out as `buffer_box`.
struct PieceTarget {
  std::byte* buffer;
  Box buffer_box;  // a copy: reads may run after the caller's box list is gone
  Box overlap;
};

/// Which saved piece: its tensor (index in the manifest), its writer, and its place among that
/// writer's pieces of the tensor. The same on every rank that knows the piece, whichever records
/// it loaded (a format 2.x manifest holds only the boxes of the records a rank read).
struct PieceKey {
  uint32_t tensor = 0;
  int32_t writer = 0;
  int64_t index = 0;
  auto operator<=>(const PieceKey&) const = default;
};

/// A saved piece this rank needs, with every local box it fills.
struct PieceNeed {
  PieceKey key;
  const TensorRecord* tensor;
  const PieceRecord* piece;
  std::vector<PieceTarget> targets;
};

/// Local. Appends the pieces of tensor `t` (index `tensor` in the manifest) that touch `boxes`
/// (with `buffers[i]` laid out as `boxes[i]`) to `out`.
void collect_piece_needs(const TensorRecord& t, uint32_t tensor, const std::vector<Box>& boxes,
                         const std::vector<std::byte*>& buffers, std::vector<PieceNeed>& out);

/// Local. Reads `pieces` whole, one after the other, into `out`, and verifies each against its
/// checksum before returning (kCorrupt naming the key and piece). Packed pieces are read in merged
/// windows of at most `staging_bytes`, or served by `prefetch` (see PackedReadBatch::run).
void read_whole_pieces(ContainerReader& reader, const std::vector<const PieceNeed*>& pieces,
                       std::byte* out, int64_t staging_bytes, PackedPrefetch* prefetch = nullptr);

/// Local. Copies a whole piece's bytes into every target of `need`.
void deliver_piece(const PieceNeed& need, const std::byte* data);

/// Local. Fills `buffers[i]` (laid out as `boxes[i]`) with tensor `t`'s values. Dataset tensors are
/// read at once (directly into the destination where a saved piece fits inside it); packed pieces
/// are queued on `packed`, which the caller runs. Throws kCorrupt naming the key and piece on a
/// checksum mismatch, or if the checkpoint lacks data for part of a box. With `overlapped`, the
/// last blocks may still be under verification on return: the caller's finish() reports their
/// errors (and must come before the values are used); without it, all is verified on return.
/// Pieces in `supplied` are left out (another rank of the node reads them; they still count for
/// coverage). Returns the bytes of the pieces it read or queued.
int64_t read_tensor(ContainerReader& reader, const TensorRecord& t, const std::vector<Box>& boxes,
                    const std::vector<std::byte*>& buffers, PackedReadBatch& packed,
                    OverlappedChecks* overlapped = nullptr,
                    const std::unordered_set<const PieceRecord*>* supplied = nullptr);

/// Local. Queues the bytes of `blob` of state `key` on `packed`; `out` receives them.
void read_state_blob(const StateRecord& state, const StateBlob& blob, std::string& out,
                     PackedReadBatch& packed);

}  // namespace cairn::detail
