#pragma once
// The collective save of one checkpoint container, with the crash-safe commit protocol.
#include <functional>
#include <memory>
#include <string>

#include "cairn/comm/session.hpp"
#include "cairn/graph/trackable.hpp"

namespace cairn::detail {

struct SaveStats {
  int64_t bytes = 0;  // tensor and state bytes this job wrote (all ranks)
  double seconds = 0;
};

/// Collective over the session. Writes the graph under `root` to `path` (through a temporary file,
/// committed only if every rank succeeded). `after_commit` runs on rank 0 once the file is in
/// place (e.g. to update the directory's state file); its failure is reported on every rank.
SaveStats save_container(const Session& session, const std::shared_ptr<Trackable>& root,
                         const std::string& path, int64_t save_counter,
                         const std::function<void()>& after_commit);

}  // namespace cairn::detail
