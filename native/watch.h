// watch(): a uv_poll_t on the calling thread's event loop, for the low-rate control socket.
#pragma once

#include <napi.h>

namespace lnlb {

// watch.
void RegisterWatch(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
