// SPDX-License-Identifier: Apache-2.0
// Levels 1 and 2: each node's part of a checkpoint in a directory of its own (a RAM disk, a local
// NVMe), protected by redundancy across nodes.
#include <algorithm>
#include <filesystem>

#include "storage/node_layout.hpp"
#include "storage/tier.hpp"

namespace cairn::detail {
namespace {

namespace fs = std::filesystem;

// "<name>-<digits>.h5" followed by `tail` ("" for the file itself, ".tmp-" for a temporary).
bool named_like(const std::string& file, const std::string& name, const std::string& tail) {
  if (file.rfind(name + "-", 0) != 0) return false;
  std::size_t i = name.size() + 1;
  const std::size_t digits_start = i;
  while (i < file.size() && file[i] >= '0' && file[i] <= '9') ++i;
  if (i == digits_start || file.compare(i, 3, ".h5") != 0) return false;
  i += 3;
  return tail.empty() ? i == file.size() : file.compare(i, tail.size(), tail) == 0;
}

class NodeLocalTier final : public StorageTier {
 public:
  NodeLocalTier(const Comm& job, NodeLayout layout, const std::string& root,
                const RedundancySpec& spec)
      : job_(job), layout_(std::move(layout)), spec_(spec) {
    dir_ = (fs::path(root) / ("node-" + std::to_string(layout_.node_index))).string();
    red_dir_ = (fs::path(dir_) / "redundancy").string();
    part_ = {&layout_.node, layout_.node_index, layout_.nodes,
             layout_.node_ranks.at(static_cast<std::size_t>(layout_.node_index))};
    job_.run_agreed([&] {
      if (!layout_.is_leader) return;
      std::error_code ec;
      fs::create_directories(dir_, ec);
      if (ec || !fs::is_directory(dir_))
        throw Error(ErrorCode::kIo,
                    "cannot create the node-local directory of node " +
                        std::to_string(layout_.node_index) + (ec ? ": " + ec.message() : ""),
                    {.rank = job_.rank(), .checkpoint = dir_, .operation = "node-local level"});
    });
  }

  std::string level() const override { return "node-local"; }
  std::string path_of(const std::string& file_name) const override {
    return (fs::path(dir_) / file_name).string();
  }
  const PartTarget* part() const override { return &part_; }

  void protect(const std::string& file_name) override {
    detail::protect(job_, layout_, spec_, file_name, path_of(file_name), red_dir_);
  }

  TierAvailability make_available(const std::string& file_name) override {
    const RebuildOutcome r =
        detail::rebuild(job_, layout_, spec_, file_name, path_of(file_name), red_dir_);
    return {r.complete, r.rebuilt_nodes, r.reason};
  }

  std::vector<std::string> remove(const std::string& file_name) override {
    if (!layout_.is_leader) return {};
    std::vector<std::string> failures;
    // The redundancy files first, the part last: a process killed in between leaves a part the
    // state file does not name, which recover() deletes with whatever redundancy files are left.
    try {
      remove_redundancy(file_name, red_dir_);
    } catch (const Error& e) {
      failures.push_back(e.what());
    }
    std::error_code ec;
    fs::remove(path_of(file_name), ec);
    if (ec) failures.push_back("could not delete '" + path_of(file_name) + "': " + ec.message());
    return failures;
  }

  std::vector<std::string> recover(const std::string& name,
                                   const std::vector<std::string>& recorded) override {
    if (!layout_.is_leader) return {};
    std::vector<std::string> notes;
    std::error_code ec;
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(dir_, ec))
      if (entry.is_regular_file()) found.push_back(entry.path());
    for (const fs::path& p : found) {
      const std::string file = p.filename().string();
      const bool temporary = named_like(file, name, ".tmp-");
      const bool unrecorded = named_like(file, name, "") &&
                              std::find(recorded.begin(), recorded.end(), file) == recorded.end();
      if (!temporary && !unrecorded) continue;
      std::error_code removed;
      fs::remove(p, removed);
      if (unrecorded) {
        try {
          remove_redundancy(file, red_dir_);
        } catch (const Error&) {
          // Its redundancy files are unreachable without the part: nothing more to do.
        }
      }
      notes.push_back(
          removed ? "could not delete '" + p.string() + "': " + removed.message()
                  : "deleted '" + p.string() + "', left by a save that " +
                        (temporary ? "did not complete" : "the state file does not record"));
    }
    // Redundancy files of checkpoints the state file does not name, whose part is gone (a process
    // killed while deleting them, or a part deleted by hand).
    for (const std::string& checkpoint : redundancy_checkpoints(red_dir_)) {
      if (!named_like(checkpoint, name, "") ||
          std::find(recorded.begin(), recorded.end(), checkpoint) != recorded.end())
        continue;
      try {
        remove_redundancy(checkpoint, red_dir_);
        notes.push_back("deleted the redundancy files of '" + checkpoint +
                        "', which the state file does not record, in '" + red_dir_ + "'");
      } catch (const Error& e) {
        notes.push_back(std::string("could not delete redundancy files: ") + e.what());
      }
    }
    return notes;
  }

 private:
  const Comm& job_;
  NodeLayout layout_;
  RedundancySpec spec_;
  std::string dir_;
  std::string red_dir_;
  PartTarget part_;
};

}  // namespace

std::unique_ptr<StorageTier> make_node_local_tier(const Comm& job, std::string root,
                                                  const RedundancySpec& redundancy,
                                                  bool rank_per_node, int node_color) {
  NodeLayout layout = node_color >= 0 ? make_node_layout_by_color(job, node_color)
                                      : make_node_layout(job, rank_per_node);
  return std::make_unique<NodeLocalTier>(job, std::move(layout), root, redundancy);
}

}  // namespace cairn::detail
