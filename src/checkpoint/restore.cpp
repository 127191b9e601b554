// SPDX-License-Identifier: Apache-2.0
#include "checkpoint/restore.hpp"

#include <chrono>

#include "cairn/state/state.hpp"
#include "cairn/tensor/variable.hpp"
#include "core/log.hpp"
#include "core/trace.hpp"
#include "storage/fault_injection.hpp"
#include "storage/hdf5_lock.hpp"
#include "storage/node_share.hpp"

namespace cairn::detail {
namespace {

// The bytes of this rank's variables that the restore filled (what it read, give or take the
// rest of the pieces it read whole).
int64_t restored_bytes(const std::vector<RestoreContext::Match>& matches) {
  int64_t bytes = 0;
  for (const RestoreContext::Match& m : matches)
    if (const auto* v = dynamic_cast<const Variable*>(m.object.get()))
      for (std::size_t b = 0; b < v->local_boxes().size(); ++b)
        bytes += static_cast<int64_t>(v->box_bytes(b).size());
  return bytes;
}

// Local: `total_bytes`, the job's sum, came with the agreement on the close.
RestoreStats log_restore(const Session& session, const RestoreContext& context,
                         const std::vector<RestoreContext::Match>& matches, int64_t total_bytes,
                         std::chrono::steady_clock::time_point started, const std::string& level) {
  const LogOptions& log = session.options().log;
  RestoreStats stats;
  stats.bytes = total_bytes;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const int64_t bytes = stats.bytes;
  const double seconds = stats.seconds;
  if (!log_enabled(log, session.rank(), LogLevel::kInfo)) return stats;
  int64_t tensors = 0, states = 0;
  for (const RestoreContext::Match& m : matches) {
    tensors += dynamic_cast<const Variable*>(m.object.get()) ? 1 : 0;
    states += dynamic_cast<const StateObject*>(m.object.get()) ? 1 : 0;
  }
  const Manifest& saved = context.manifest();
  log_line(log, session.rank(), LogLevel::kInfo,
           "restored '" + context.path() + "' (counter " + std::to_string(saved.save_counter) +
               ", saved on " + std::to_string(saved.world_size) + " ranks, restored on " +
               std::to_string(session.size()) + "): " + std::to_string(tensors) + " of " +
               std::to_string(saved.tensors.size()) + " tensors and " + std::to_string(states) +
               " of " + std::to_string(saved.states.size()) + " states, " + describe_bytes(bytes) +
               " in " + describe_seconds(seconds) + ", " + describe_rate(bytes, seconds) +
               ", level: " + level);
  return stats;
}

}  // namespace

std::shared_ptr<RestoreContext> restore_container(const Session& session,
                                                  const std::shared_ptr<Trackable>& root,
                                                  const std::string& path, RestoreStats* stats,
                                                  const Comm* node, const std::string& level) {
  const Comm& comm = session.comm();
  wait_for_background_saves();
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  const auto started = std::chrono::steady_clock::now();
  PhaseTrace trace("restore", comm.rank(), path);
  // A part's reader is opened by its node (the node agrees on its errors); the job then agrees on
  // the outcome, so a damaged part on one node is the same error on every rank.
  std::unique_ptr<ContainerReader> opened;
  std::shared_ptr<RestoreContext> context;
  try {
    comm.run_agreed([&] {
      opened =
          node ? std::make_unique<ContainerReader>(node, path, session.options().read_ahead_bytes,
                                                   ContainerReader::Records::kOnDemand, &comm)
               : std::make_unique<ContainerReader>(&comm, path, session.options().read_ahead_bytes,
                                                   ContainerReader::Records::kOnDemand);
      if (node && !opened->records())
        throw Error(ErrorCode::kCorrupt, "a node-local part must be format 2.1",
                    {.rank = comm.rank(), .checkpoint = path, .operation = "restore"});
      if (node && opened->records()->header().world_size != comm.size())
        throw Error(ErrorCode::kShardMismatch,
                    "this node-local part was saved by " +
                        std::to_string(opened->records()->header().world_size) +
                        " ranks; a part restores only at the job size that saved it (restore from "
                        "the shared file at another size)",
                    {.rank = comm.rank(), .checkpoint = path, .operation = "restore"});
      if (node && !opened->records()->header().holds_writer(comm.rank()))
        throw Error(ErrorCode::kShardMismatch,
                    "this node-local part (part " +
                        std::to_string(opened->records()->header().part_index + 1) + " of " +
                        std::to_string(opened->records()->header().part_count) +
                        ") does not hold this rank's data: the job groups its ranks into nodes "
                        "differently than the job that saved it",
                    {.rank = comm.rank(), .checkpoint = path, .operation = "restore"});
      // Agreed like every step: an allocation failing on one rank must not leave the others
      // waiting.
      context = std::make_shared<RestoreContext>(session, path, opened->take_manifest(),
                                                 opened->commit_mark(), opened->records(), root);
    });
  } catch (...) {
    // Built on the ranks whose step succeeded: it must not report values never restored.
    if (context) context->abandon();
    throw;
  }
  ContainerReader& reader = *opened;
  trace.mark("open and read the manifest");
  std::vector<RestoreContext::Match> matches;
  RestoreContext::ReadCounts read_counts;
  int node_ranks = 1;
  int64_t total_bytes = 0;
  try {
    // Validate everywhere before anything is overwritten anywhere. Reading the records overwrites
    // nothing and is local (independent reads), so it is agreed with the validation.
    comm.run_agreed([&] {
      matches = context->match(0, root);
      context->validate(matches);
      trace.mark("match and validate");
      fault_point("restore_before_read", comm.rank());
      context->load_records(matches, reader);
    });
    trace.mark("read records");
    // Collective over the node inside restore_values; a failure there is the same error on every
    // rank of the node, then agreed over the session here.
    std::unique_ptr<NodeShare> share;
    // A part holds its node's copy of every replicated piece: nothing is shared between parts.
    if (session.options().replicated_reads == ReplicatedReads::kOncePerNode && comm.size() > 1 &&
        !node)
      comm.run_agreed([&] { share = std::make_unique<NodeShare>(comm); });
    std::optional<Error> failure = comm.run_local(
        [&] { read_counts = context->restore_values(matches, reader, share.get()); });
    node_ranks = share ? share->node_size() : 1;
    const int64_t local_bytes = restored_bytes(matches);
    trace.mark("read and verify", local_bytes);
    // The close is collective too, made by every rank whatever its reads did, then agreed with
    // them: a rank whose reads or close failed must not leave the others waiting.
    if (!failure) failure = comm.run_local([&] { fault_point("restore_after_read", comm.rank()); });
    const std::optional<Error> closed = comm.run_local([&] {
      reader.close();
      fault_point("restore_close", comm.rank());
    });
    if (!failure) failure = closed;
    // The job's restored bytes ride in the agreement: made whatever the log level, as a level
    // that differed between ranks must not make some skip a collective.
    total_bytes = comm.allreduce_sum_agreed(local_bytes, failure ? &*failure : nullptr);
  } catch (...) {
    context->abandon();  // a failed restore must not keep restoring objects attached later
    throw;
  }
  const int64_t metadata_bytes_read = reader.metadata_bytes_read();
  context->finish_collective_restore();
  trace.mark("close");
  RestoreStats done = log_restore(session, *context, matches, total_bytes, started, level);
  done.metadata_bytes_read = metadata_bytes_read;
  done.bytes_read_from_file = read_counts.from_file;
  done.bytes_received_from_peers = read_counts.from_peers;
  done.node_ranks = node_ranks;
  if (stats) *stats = done;
  return context;
}

}  // namespace cairn::detail
