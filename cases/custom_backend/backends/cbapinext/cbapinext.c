/*
 * cbapinext: a backend "built for" a TRITONBACKEND API newer than any server in the matrix
 * (1.99). Its Initialize does the check the API documentation asks of every backend (same
 * major, server minor >= the one built for) and refuses to run, so every model using it must
 * fail to load with this message. Initialize and Finalize write event lines to the server log
 * ("cb-event <tag> ...", tag from --backend-config=cbapinext,event_tag=<tag>, default cbapinext).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>

#include "../include/cb_common.h"

#define BUILT_FOR_MAJOR 1
#define BUILT_FOR_MINOR 99

static char g_backend_tag[CB_TAG_MAX];
static atomic_long g_initialize;
static atomic_long g_finalize;

CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_Initialize(TRITONBACKEND_Backend* backend)
{
  long calls = atomic_fetch_add(&g_initialize, 1) + 1;
  cb_backend_event_tag(backend, "cbapinext", g_backend_tag, sizeof g_backend_tag);
  uint32_t major = 0, minor = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_ApiVersion(&major, &minor);
  if (err != NULL) {
    return err;
  }
  int compatible = major == BUILT_FOR_MAJOR && minor >= BUILT_FOR_MINOR;
  cb_event(g_backend_tag, "backend_initialize api=%u.%u calls=%ld%s", major, minor, calls,
           compatible ? "" : " refused");
  if (!compatible) {
    char msg[256];
    snprintf(msg, sizeof msg, "cbapinext was built for TRITONBACKEND API %d.%d; this server provides %u.%u",
             BUILT_FOR_MAJOR, BUILT_FOR_MINOR, major, minor);
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNSUPPORTED, msg);
  }
  return NULL;
}

CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_Finalize(TRITONBACKEND_Backend* backend)
{
  (void)backend;
  long calls = atomic_fetch_add(&g_finalize, 1) + 1;
  cb_event(g_backend_tag, "backend_finalize calls=%ld", calls);
  return NULL;
}

/* Never reached on the servers of the matrix; required for the library to be a backend. */
CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance* instance,
                                                                  TRITONBACKEND_Request** requests,
                                                                  const uint32_t request_count)
{
  (void)instance;
  (void)requests;
  (void)request_count;
  return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNSUPPORTED, "cbapinext never executes");
}
