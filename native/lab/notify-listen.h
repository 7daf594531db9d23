// notifyListen(path): a unix datagram socket bound to `path` ('@name': the abstract
// namespace), non-blocking, with SO_PASSCRED, its fd returned: the service manager's end of
// sd_notify, so that a test runs lnlbd as systemd runs a Type=notify unit (lab/service-unit.ts).
// notifyRecv(fd): the next datagram and the pid that sent it (null when none waits), so the
// test can check, as NotifyAccess=main does, that the main process sent it. Lab only.
#pragma once

#include <napi.h>

namespace lnlb {

// notifyListen, notifyRecv.
void RegisterNotifyListen(Napi::Env env, Napi::Object exports);

}  // namespace lnlb
