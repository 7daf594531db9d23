// Errors: every failed system call becomes a JS Error carrying errno name and syscall, so
// the TypeScript side (src/port/native.ts) can turn it into an LnlbError that says what to
// do. Wrong argument types and ranges are programming errors: TypeError/RangeError, no errno.
#pragma once

#include <napi.h>

#include <string>

namespace lnlb {

// The errno's symbolic name (ENODEV), or EUNKNOWN.
const char* ErrnoName(int err);

// Throws an Error "syscall[ on device]: description (ENAME)" with errno, errnoNumber,
// syscall and device (when given) set on it.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall,
                             const std::string& device = std::string());

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

}  // namespace lnlb
