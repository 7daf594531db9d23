// TAP devices (/dev/net/tun, IFF_TAP | IFF_NO_PI), not persistent: a device lives as long as
// its fd.
#pragma once

#include <napi.h>

namespace lnlb {

// tapOpen.
void RegisterTap(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
