// SPDX-License-Identifier: Apache-2.0
// Level 3: one file per checkpoint in a directory every rank sees.
#include <filesystem>

#include "storage/tier.hpp"

namespace cairn::detail {
namespace {

namespace fs = std::filesystem;

class SharedFileTier final : public StorageTier {
 public:
  SharedFileTier(const Comm& job, std::string directory)
      : job_(job), directory_(std::move(directory)) {}

  std::string level() const override { return "shared file"; }
  std::string path_of(const std::string& file_name) const override {
    return (fs::path(directory_) / file_name).string();
  }
  const PartTarget* part() const override { return nullptr; }
  void protect(const std::string&) override {}

  TierAvailability make_available(const std::string& file_name) override {
    // Rank 0 looks; the restore itself checks the rest (commit mark, checksums) on every rank.
    int64_t present = 0;
    if (job_.rank() == 0) {
      std::error_code ec;
      present = fs::is_regular_file(path_of(file_name), ec) ? 1 : 0;
    }
    present = job_.allreduce_max(present);
    TierAvailability out;
    out.complete = present == 1;
    if (!out.complete) out.reason = "'" + path_of(file_name) + "' does not exist";
    return out;
  }

  std::vector<std::string> remove(const std::string& file_name) override {
    if (job_.rank() != 0) return {};
    std::error_code ec;
    fs::remove(path_of(file_name), ec);
    if (ec) return {"could not delete '" + path_of(file_name) + "': " + ec.message()};
    return {};
  }

  // The shared directory's own recovery (state file, adoption of committed files) is the
  // manager's directory recovery; nothing else is left here.
  std::vector<std::string> recover(const std::string&, const std::vector<std::string>&) override {
    return {};
  }

 private:
  const Comm& job_;
  std::string directory_;
};

}  // namespace

std::unique_ptr<StorageTier> make_shared_file_tier(const Comm& job, std::string directory) {
  return std::make_unique<SharedFileTier>(job, std::move(directory));
}

}  // namespace cairn::detail
