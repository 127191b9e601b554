#include "checkpoint/restore.hpp"

#include "core/trace.hpp"
#include "storage/fault_injection.hpp"
#include "storage/hdf5_lock.hpp"

namespace cairn::detail {

std::shared_ptr<RestoreContext> restore_container(const Session& session,
                                                  const std::shared_ptr<Trackable>& root,
                                                  const std::string& path) {
  const Comm& comm = session.comm();
  wait_for_background_saves();
  std::lock_guard<std::recursive_mutex> hdf5(hdf5_mutex());
  PhaseTrace trace("restore", comm.rank());
  ContainerReader reader(&comm, path, session.options().read_ahead_bytes);
  std::shared_ptr<RestoreContext> context;
  // Agreed like every step: an allocation failing on one rank must not leave the others waiting.
  comm.run_agreed([&] {
    context = std::make_shared<RestoreContext>(session, path, reader.take_manifest(),
                                               reader.commit_mark(), root);
  });
  trace.mark("open and read the manifest");
  std::vector<RestoreContext::Match> matches;
  try {
    // Validate everywhere before anything is overwritten anywhere.
    comm.run_agreed([&] {
      matches = context->match(0, root);
      context->validate(matches);
    });
    trace.mark("match and validate");
    fault_point("restore_before_read", comm.rank());
    comm.run_agreed([&] { context->restore_values(matches, reader); });
    trace.mark("read and verify");
    fault_point("restore_after_read", comm.rank());
  } catch (...) {
    context->abandon();  // a failed restore must not keep restoring objects attached later
    throw;
  }
  reader.close();
  context->finish_collective_restore();
  trace.mark("close");
  return context;
}

}  // namespace cairn::detail
