// flock(2) for the host-wide lock files (src/main/host-state.ts): one daemon per device, and
// the shared sysctl bookkeeping, on a host where several lnlbd run.
#pragma once

#include <napi.h>

namespace lnlb {

// flock(fd, exclusive, nonBlocking) -> true when locked; false when nonBlocking and another
// open file holds a conflicting lock (EWOULDBLOCK). Any other failure throws an Error with
// errno, errnoNumber and syscall, as the port's calls do.
Napi::Value Flock(const Napi::CallbackInfo& info);

}  // namespace lnlb
