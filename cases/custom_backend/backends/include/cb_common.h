/*
 * Small helpers shared by the cb* backends (header-only: each backend folder is compiled on its
 * own): logging, events, and just enough JSON reading for the configs the server hands over.
 */
#ifndef CB_COMMON_H
#define CB_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cb_triton_api.h"

#define CB_TAG_MAX 128

static inline uint64_t cb_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cb_log(TRITONSERVER_LogLevel level, const char* msg)
{
  TRITONSERVER_Error* err = TRITONSERVER_LogMessage(level, __FILE__, __LINE__, msg);
  if (err != NULL) {
    TRITONSERVER_ErrorDelete(err);
  }
}

/* Log a failed API call and drop its error (for calls whose failure only needs reporting). */
static inline void cb_check(TRITONSERVER_Error* err, const char* what)
{
  if (err != NULL) {
    char line[512];
    snprintf(line, sizeof line, "cb backend: %s failed: %s", what, TRITONSERVER_ErrorMessage(err));
    cb_log(TRITONSERVER_LOG_ERROR, line);
    TRITONSERVER_ErrorDelete(err);
  }
}

/*
 * Record one lifecycle event: a server log line "cb-event <tag> <event> <key=value>...". The
 * cases find their events in the server log by the tag (a model's "event_tag" parameter, or the
 * backend's --backend-config=<backend>,event_tag=<tag>), so this works wherever the server runs.
 */
__attribute__((format(printf, 2, 3))) static inline void cb_event(const char* tag, const char* fmt, ...)
{
  char line[768];
  int n = snprintf(line, sizeof line, "cb-event %s ", tag);
  if (n < 0 || (size_t)n >= sizeof line) {
    return;
  }
  va_list args;
  va_start(args, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, args);
  va_end(args);
  cb_log(TRITONSERVER_LOG_INFO, line);
}

/* The JSON text of a server message as a NUL-terminated copy (free() it), or NULL. */
static inline char* cb_message_json(TRITONSERVER_Message* message)
{
  const char* base = NULL;
  size_t size = 0;
  TRITONSERVER_Error* err = TRITONSERVER_MessageSerializeToJson(message, &base, &size);
  if (err != NULL) {
    cb_check(err, "TRITONSERVER_MessageSerializeToJson");
    return NULL;
  }
  char* copy = malloc(size + 1);
  if (copy != NULL) {
    memcpy(copy, base, size);
    copy[size] = '\0';
  }
  return copy;
}

static inline const char* cb_skip_ws(const char* p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
    p++;
  }
  return p;
}

/*
 * The string value of "key" in 'json', into 'out': either "key":"value" (backend config) or
 * "key":{"string_value":"value"} (a model config parameter). Returns 1 when found. Enough JSON
 * for the configs these backends are given; not a general parser.
 */
static inline int cb_json_string(const char* json, const char* key, char* out, size_t cap)
{
  char quoted[128];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char* p = json;
  while ((p = strstr(p, quoted)) != NULL) {
    const char* v = cb_skip_ws(p + strlen(quoted));
    p += strlen(quoted);
    if (*v != ':') {
      continue;
    }
    v = cb_skip_ws(v + 1);
    if (*v == '{') {
      const char* sv = strstr(v, "\"string_value\"");
      if (sv == NULL) {
        return 0;
      }
      v = cb_skip_ws(sv + strlen("\"string_value\""));
      if (*v != ':') {
        return 0;
      }
      v = cb_skip_ws(v + 1);
    }
    if (*v != '"') {
      return 0;
    }
    size_t n = 0;
    for (v++; *v != '\0' && *v != '"'; v++) {
      if (*v == '\\' && v[1] != '\0') {
        v++;
      }
      if (n + 1 < cap) {
        out[n++] = *v;
      }
    }
    out[n] = '\0';
    return *v == '"';
  }
  return 0;
}

/* The integer value of "key":N in 'json', or 'fallback'. */
static inline long long cb_json_int(const char* json, const char* key, long long fallback)
{
  char quoted[128];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char* p = strstr(json, quoted);
  if (p == NULL) {
    return fallback;
  }
  p = cb_skip_ws(p + strlen(quoted));
  if (*p != ':') {
    return fallback;
  }
  p = cb_skip_ws(p + 1);
  if (*p == '"') { /* 64-bit integers may be written as strings */
    p++;
  }
  char* end = NULL;
  long long value = strtoll(p, &end, 10);
  return end == p ? fallback : value;
}

/* The event tag a backend was given with --backend-config=<backend>,event_tag=<tag>, else 'fallback'. */
static inline void cb_backend_event_tag(TRITONBACKEND_Backend* backend, const char* fallback, char* out, size_t cap)
{
  snprintf(out, cap, "%s", fallback);
  TRITONSERVER_Message* config = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_BackendConfig(backend, &config);
  if (err != NULL) {
    cb_check(err, "TRITONBACKEND_BackendConfig");
    return;
  }
  char* json = cb_message_json(config); /* the message stays owned by the server */
  if (json != NULL) {
    if (!cb_json_string(json, "event_tag", out, cap) || out[0] == '\0') {
      snprintf(out, cap, "%s", fallback);
    }
    free(json);
  }
}

#endif
