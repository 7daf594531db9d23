// watch(): see watch.h.

#include "watch.h"

#include <errno.h>
#include <sys/socket.h>
#include <uv.h>

#include <memory>

#include "args.h"
#include "errors.h"

namespace lnlb {

namespace {

struct WatchHandle {
  uv_poll_t poll;
  int fd = -1;
  napi_env env;
  Napi::FunctionReference onReadable;
  bool closing = false;
};

void CloseWatch(WatchHandle* h) {
  if (h->closing) return;
  h->closing = true;
  uv_poll_stop(&h->poll);
  h->onReadable.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
           [](uv_handle_t* handle) { delete static_cast<WatchHandle*>(handle->data); });
}

// A worker that exits with an active watch must not leave the handle on its dying loop.
void WatchCleanupHook(void* arg) { CloseWatch(static_cast<WatchHandle*>(arg)); }

void OnPoll(uv_poll_t* poll, int status, int /*events*/) {
  auto* h = static_cast<WatchHandle*>(poll->data);
  if (h->closing) return;
  // libuv stops a poll that saw POLLERR. A socket's pending error (a packet socket's link went
  // down: ENETDOWN) is taken here (SO_ERROR clears it) and the poll goes on, so frames wake
  // the reader again once the link is back (a stopped watch left the control thread to find
  // them on its timer only). With no socket error to take, polling again would spin on the
  // same condition: it stays stopped, and the callback runs once more for its read to report.
  if (status < 0) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      if (uv_poll_start(poll, UV_READABLE, OnPoll) < 0) uv_poll_stop(poll);
    } else {
      uv_poll_stop(poll);
    }
  }
  Napi::Env env(h->env);
  Napi::HandleScope scope(env);
  try {
    h->onReadable.MakeCallback(env.Global(), {});
  } catch (const Napi::Error& e) {
    // A thread being torn down (its process exiting, Worker.terminate()) fails the call with
    // the termination itself, which has no value: there is nothing to report, and handing it
    // to napi_fatal_exception in a dying environment can abort the process.
    Napi::Value error = e.Value();
    if (error.IsEmpty() || error.IsUndefined() || error.IsNull()) return;
    napi_fatal_exception(h->env, error);  // becomes an 'uncaughtException'
  }
}

struct WatchState {
  WatchHandle* handle;  // null once stopped
};

Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowType(env, "onReadable must be a function");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowErrno(env, EINVAL, "napi_get_uv_event_loop");

  auto* h = new WatchHandle();
  h->env = env;
  h->fd = fd;
  h->poll.data = h;
  int rc = uv_poll_init(loop, &h->poll, fd);
  if (rc < 0) {
    delete h;
    ThrowErrno(env, -rc, "uv_poll_init");
  }
  rc = uv_poll_start(&h->poll, UV_READABLE, OnPoll);
  if (rc < 0) {
    h->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
             [](uv_handle_t* handle) { delete static_cast<WatchHandle*>(handle->data); });
    ThrowErrno(env, -rc, "uv_poll_start");
  }
  h->onReadable = Napi::Persistent(info[1].As<Napi::Function>());
  napi_add_env_cleanup_hook(env, WatchCleanupHook, h);

  auto state = std::make_shared<WatchState>(WatchState{h});
  Napi::Object out = Napi::Object::New(env);
  out.Set("stop", Napi::Function::New(env, [state](const Napi::CallbackInfo& ci) {
            if (state->handle == nullptr) return;
            napi_remove_env_cleanup_hook(ci.Env(), WatchCleanupHook, state->handle);
            CloseWatch(state->handle);
            state->handle = nullptr;
          }));
  out.Set("unref", Napi::Function::New(env, [state](const Napi::CallbackInfo&) {
            if (state->handle != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&state->handle->poll));
          }));
  out.Set("ref", Napi::Function::New(env, [state](const Napi::CallbackInfo&) {
            if (state->handle != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&state->handle->poll));
          }));
  return out;
}

}  // namespace

void RegisterWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("watch", Napi::Function::New(env, Watch, "watch"));
}

}  // namespace lnlb
