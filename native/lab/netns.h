// netnsEnter: moves the calling thread (only) into another network namespace. Sockets and
// TAPs created afterwards on this thread live there; fds already open keep their namespace.
// Lets one process drive ports in several namespaces (tests, lab, bench). Lab only: lnlbd
// runs in the namespace it was started in.
#pragma once

#include <napi.h>

namespace lnlb {

// netnsEnter.
void RegisterNetns(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
