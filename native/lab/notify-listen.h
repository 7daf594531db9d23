// notifyListen(path): a unix datagram socket bound to `path` ('@name': the abstract
// namespace), non-blocking, its fd returned: the service manager's end of sd_notify, so that a
// test runs lnlbd as systemd runs a Type=notify unit (lab/service-unit.ts) and reads what it
// says (port.recv on the fd: one datagram a read). Lab only.
#pragma once

#include <napi.h>

namespace lnlb {

// notifyListen.
void RegisterNotifyListen(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
