// Argument helpers for the addon's calls. Wrong types are programming errors
// (TypeError/RangeError, no errno). Inline: several run on every call of a hot path.
#pragma once

#include <napi.h>

#include <stdint.h>

#include <string>

#include "errors.h"

namespace lnlb {

inline int32_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

inline uint32_t UintArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  int64_t v = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Int64Value() : -1;
  if (v < 0 || v > UINT32_MAX) ThrowRange(info.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<uint32_t>(v);
}

inline std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline Napi::Object ObjArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) ThrowType(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

template <typename T, napi_typedarray_type kType>
struct Span {
  T* data;
  size_t length;  // in elements
};

// One napi_get_typedarray_info (type, length and data at once): node-addon-api's IsTypedArray,
// TypedArrayType and TypedArrayOf<T> took three calls, and a batch read or write passes two or
// three arrays (in a flood a batch is a few frames: this was ~9% of the dispatcher's time).
template <typename T, napi_typedarray_type kType>
Span<T, kType> TypedArg(Napi::Env env, Napi::Value value, const char* name, const char* typeName) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok || type != kType) {
    ThrowType(env, std::string(name) + " must be a " + typeName);
  }
  return {static_cast<T*>(data), length};
}

inline Span<uint8_t, napi_uint8_array> BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return TypedArg<uint8_t, napi_uint8_array>(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name,
                                             "Uint8Array");
}

inline Span<uint32_t, napi_uint32_array> WordsArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return TypedArg<uint32_t, napi_uint32_array>(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), name,
                                               "Uint32Array");
}

inline bool BoolOpt(Napi::Object opts, const char* key, bool fallback) {
  Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? fallback : v.ToBoolean().Value();
}

inline int64_t IntOpt(Napi::Env env, Napi::Object opts, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) ThrowType(env, std::string("option ") + key + " must be a number");
  int64_t n = v.As<Napi::Number>().Int64Value();
  if (n < min || n > max) ThrowRange(env, std::string("option ") + key + " out of range");
  return n;
}

// Range check for (offset, length) inside a buffer, done in 64 bits so it cannot wrap.
inline void CheckSlice(Napi::Env env, size_t bufLength, uint64_t offset, uint64_t length, const char* what) {
  if (offset + length > bufLength) ThrowRange(env, std::string(what) + ": offset + length exceed the buffer");
}

}  // namespace lnlb
