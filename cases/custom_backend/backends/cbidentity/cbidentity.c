/*
 * cbidentity: a TRITONBACKEND backend in plain C that answers every requested output
 * OUTPUT<x> with a byte-exact copy of input INPUT<x>, and makes its own lifecycle observable:
 *
 * - every entry point writes an event line to the server log, "cb-event <tag> <event> ...":
 *   a model's events are tagged with its config parameter "event_tag" (default: its name), the
 *   backend's with --backend-config=cbidentity,event_tag=<tag> (default: cbidentity);
 * - the optional output INFO (INT64, 8 values per batch row) describes the execute call that
 *   answered the request: [0] requests in the call, [1] batch rows in the call, [2] this
 *   request's index in the call, [3] the instance's ordinal (order of its Initialize), [4] the
 *   instance's executes so far, [5] the memory type INPUT0 arrived in after asking for CPU,
 *   [6] INPUT0's buffer count, [7] the memory type of this INFO buffer after asking for CPU;
 * - per request and per batch statistics are reported to the server (model statistics).
 *
 * Failures on request, to test the server's handling: model parameter
 * "fail_model_initialize" (any value) refuses ModelInitialize; "fail_instance" = "<ordinal>"
 * refuses that instance's Initialize; request parameter "cb_fail" = "respond" answers that
 * request with an error response, "cb_fail" = "execute" makes ModelInstanceExecute itself return
 * an error (the server then answers every request of the call).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>

#include "../include/cb_common.h"

/* The oldest TRITONBACKEND API this backend runs on: 23.10's (server 2.39.0), where every
 * function it declares exists. Newer minors are compatible by the API's versioning rule. */
#define CB_API_MAJOR 1
#define CB_API_MINOR_MIN 16

#define INFO_VALUES 8

static char g_backend_tag[CB_TAG_MAX];
static atomic_long g_backend_initialize;
static atomic_long g_backend_finalize;
static uint32_t g_api_major, g_api_minor; /* what the server reported at Initialize */

typedef struct {
  char name[256];
  char tag[CB_TAG_MAX];
  long long max_batch_size;
  long long fail_instance; /* ordinal whose Initialize fails, or -1 */
  atomic_int next_ordinal;
} ModelState;

typedef struct {
  ModelState* model;
  char name[256];
  int ordinal;
  long long executes;
} InstanceState;


static const char* kind_name(TRITONSERVER_InstanceGroupKind kind)
{
  switch (kind) {
    case TRITONSERVER_INSTANCEGROUPKIND_CPU: return "CPU";
    case TRITONSERVER_INSTANCEGROUPKIND_GPU: return "GPU";
    case TRITONSERVER_INSTANCEGROUPKIND_MODEL: return "MODEL";
    default: return "AUTO";
  }
}

/* ------------------------------------------------------------------------------------------ */
CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_Initialize(TRITONBACKEND_Backend* backend)
{
  long calls = atomic_fetch_add(&g_backend_initialize, 1) + 1;
  cb_backend_event_tag(backend, "cbidentity", g_backend_tag, sizeof g_backend_tag);
  uint32_t major = 0, minor = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_ApiVersion(&major, &minor);
  if (err != NULL) {
    return err;
  }
  g_api_major = major;
  g_api_minor = minor;
  char line[256];
  snprintf(line, sizeof line, "cbidentity: TRITONBACKEND API %u.%u (this backend needs %d.%d+)",
           major, minor, CB_API_MAJOR, CB_API_MINOR_MIN);
  cb_log(TRITONSERVER_LOG_INFO, line);
  cb_event(g_backend_tag, "backend_initialize api=%u.%u calls=%ld", major, minor, calls);
  if (major != CB_API_MAJOR || minor < CB_API_MINOR_MIN) {
    snprintf(line, sizeof line,
             "cbidentity needs TRITONBACKEND API %d.%d or a newer 1.x; this server provides %u.%u",
             CB_API_MAJOR, CB_API_MINOR_MIN, major, minor);
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNSUPPORTED, line);
  }
  return NULL;
}

CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_Finalize(TRITONBACKEND_Backend* backend)
{
  (void)backend;
  long calls = atomic_fetch_add(&g_backend_finalize, 1) + 1;
  cb_event(g_backend_tag, "backend_finalize calls=%ld", calls);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model* model)
{
  const char* name = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelName(model, &name);
  if (err != NULL) {
    return err;
  }
  TRITONSERVER_Message* config = NULL;
  err = TRITONBACKEND_ModelConfig(model, 1, &config);
  if (err != NULL) {
    return err;
  }
  char* json = cb_message_json(config);
  cb_check(TRITONSERVER_MessageDelete(config), "TRITONSERVER_MessageDelete");
  if (json == NULL) {
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INTERNAL, "cbidentity: no model config JSON");
  }
  ModelState* state = calloc(1, sizeof *state);
  if (state == NULL) {
    free(json);
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INTERNAL, "cbidentity: out of memory");
  }
  snprintf(state->name, sizeof state->name, "%s", name);
  if (!cb_json_string(json, "event_tag", state->tag, sizeof state->tag) || state->tag[0] == '\0') {
    snprintf(state->tag, sizeof state->tag, "%s", name);
  }
  state->max_batch_size = cb_json_int(json, "max_batch_size", 0);
  char value[64];
  state->fail_instance = -1;
  if (cb_json_string(json, "fail_instance", value, sizeof value)) {
    state->fail_instance = strtoll(value, NULL, 10);
  }
  int refuse = cb_json_string(json, "fail_model_initialize", value, sizeof value);
  free(json);

  cb_event(state->tag,
           "model_initialize model=%s api=%u.%u max_batch_size=%lld backend_initialize=%ld backend_finalize=%ld%s",
           state->name, g_api_major, g_api_minor, state->max_batch_size, atomic_load(&g_backend_initialize),
           atomic_load(&g_backend_finalize), refuse ? " refused" : "");
  if (refuse) {
    char msg[320];
    snprintf(msg, sizeof msg, "cbidentity: model %s refused by parameter fail_model_initialize", state->name);
    free(state);
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, msg);
  }
  err = TRITONBACKEND_ModelSetState(model, state);
  if (err != NULL) {
    free(state);
  }
  return err;
}

/* Logged even without a state (a refused ModelInitialize sets none), so a call is always seen. */
CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model* model)
{
  const char* name = NULL;
  void* vstate = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelName(model, &name);
  if (err == NULL) err = TRITONBACKEND_ModelState(model, &vstate);
  if (err != NULL) {
    return err;
  }
  ModelState* state = vstate;
  if (state == NULL) {
    cb_event(g_backend_tag, "model_finalize model=%s state=none", name); /* no model tag without a state */
    return NULL;
  }
  cb_event(state->tag, "model_finalize model=%s instances=%d", name, atomic_load(&state->next_ordinal));
  free(state);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance* instance)
{
  const char* name = NULL;
  TRITONSERVER_InstanceGroupKind kind = TRITONSERVER_INSTANCEGROUPKIND_AUTO;
  TRITONBACKEND_Model* model = NULL;
  void* vmodel = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelInstanceName(instance, &name);
  if (err == NULL) err = TRITONBACKEND_ModelInstanceKind(instance, &kind);
  if (err == NULL) err = TRITONBACKEND_ModelInstanceModel(instance, &model);
  if (err == NULL) err = TRITONBACKEND_ModelState(model, &vmodel);
  if (err != NULL) {
    return err;
  }
  ModelState* mstate = vmodel;
  int ordinal = atomic_fetch_add(&mstate->next_ordinal, 1);
  int refuse = ordinal == mstate->fail_instance;
  cb_event(mstate->tag, "instance_initialize instance=%s ordinal=%d kind=%s%s", name, ordinal, kind_name(kind),
           refuse ? " refused" : "");
  if (refuse) {
    char msg[384];
    snprintf(msg, sizeof msg, "cbidentity: instance %s (ordinal %d) refused by parameter fail_instance", name,
             ordinal);
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, msg);
  }
  InstanceState* state = calloc(1, sizeof *state);
  if (state == NULL) {
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INTERNAL, "cbidentity: out of memory");
  }
  state->model = mstate;
  state->ordinal = ordinal;
  snprintf(state->name, sizeof state->name, "%s", name);
  err = TRITONBACKEND_ModelInstanceSetState(instance, state);
  if (err != NULL) {
    free(state);
  }
  return err;
}

/* Logged even without a state (a refused instance has none), so a call is always seen. */
CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance* instance)
{
  const char* name = NULL;
  TRITONBACKEND_Model* model = NULL;
  void* vmodel = NULL;
  void* vstate = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelInstanceName(instance, &name);
  if (err == NULL) err = TRITONBACKEND_ModelInstanceModel(instance, &model);
  if (err == NULL) err = TRITONBACKEND_ModelState(model, &vmodel);
  if (err == NULL) err = TRITONBACKEND_ModelInstanceState(instance, &vstate);
  if (err != NULL) {
    return err;
  }
  const ModelState* mstate = vmodel;
  InstanceState* state = vstate;
  if (state == NULL) {
    cb_event(mstate != NULL ? mstate->tag : g_backend_tag, "instance_finalize instance=%s state=none", name);
    return NULL;
  }
  cb_event(mstate->tag, "instance_finalize instance=%s ordinal=%d executes=%lld", name, state->ordinal,
           state->executes);
  free(state);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The string value of request parameter 'key', or NULL. */
static const char* request_parameter(TRITONBACKEND_Request* request, const char* key)
{
  uint32_t count = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_RequestParameterCount(request, &count);
  if (err != NULL) {
    cb_check(err, "TRITONBACKEND_RequestParameterCount");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    const char* k = NULL;
    TRITONSERVER_ParameterType type;
    const void* value = NULL;
    err = TRITONBACKEND_RequestParameter(request, i, &k, &type, &value);
    if (err != NULL) {
      cb_check(err, "TRITONBACKEND_RequestParameter");
      continue;
    }
    if (type == TRITONSERVER_PARAMETER_STRING && strcmp(k, key) == 0) {
      return value;
    }
  }
  return NULL;
}

/* What one request of an execute call is told in INFO. */
typedef struct {
  int64_t requests;     /* requests in the call */
  int64_t call_rows;    /* batch rows in the call */
  int64_t index;        /* this request's index in the call */
  int64_t rows;         /* this request's batch rows */
  int64_t input_memory; /* memory type INPUT0 arrived in (-1: none) */
  int64_t input_buffers;
} Call;

/* INPUT0's batch rows, memory type (asking for CPU) and buffer count. */
static void inspect_input0(TRITONBACKEND_Request* request, const ModelState* model, Call* call)
{
  TRITONBACKEND_Input* input = NULL;
  const int64_t* shape = NULL;
  uint32_t dims = 0, buffers = 0;
  call->rows = 1;
  call->input_memory = -1;
  call->input_buffers = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_RequestInput(request, "INPUT0", &input);
  if (err == NULL) err = TRITONBACKEND_InputProperties(input, NULL, NULL, &shape, &dims, NULL, &buffers);
  if (err != NULL) {
    cb_check(err, "reading INPUT0");
    return;
  }
  if (model->max_batch_size > 0 && dims > 0) {
    call->rows = shape[0];
  }
  call->input_buffers = buffers;
  if (buffers > 0) {
    const void* data = NULL;
    uint64_t size = 0;
    int64_t id = 0;
    TRITONSERVER_MemoryType memory = TRITONSERVER_MEMORY_CPU; /* what we ask for */
    err = TRITONBACKEND_InputBuffer(input, 0, &data, &size, &memory, &id);
    if (err == NULL) {
      call->input_memory = memory;
    }
    cb_check(err, "TRITONBACKEND_InputBuffer");
  }
}

/* Add output 'name' to 'response': a copy of the matching input, or the INFO tensor. */
static TRITONSERVER_Error* add_output(TRITONBACKEND_Request* request, TRITONBACKEND_Response* response,
                                      const InstanceState* instance, const Call* call, const char* name)
{
  TRITONBACKEND_Output* output = NULL;
  TRITONSERVER_MemoryType memory = TRITONSERVER_MEMORY_CPU; /* what we ask for */
  int64_t memory_id = 0;
  void* out = NULL;
  if (strcmp(name, "INFO") == 0) {
    int batched = instance->model->max_batch_size > 0;
    int64_t shape[2] = {call->rows, INFO_VALUES};
    int64_t rows = batched ? call->rows : 1;
    TRITONSERVER_Error* err = TRITONBACKEND_ResponseOutput(response, &output, name, TRITONSERVER_TYPE_INT64,
                                                           batched ? shape : shape + 1, batched ? 2 : 1);
    if (err == NULL) {
      err = TRITONBACKEND_OutputBuffer(output, &out, (uint64_t)(rows * INFO_VALUES) * sizeof(int64_t), &memory,
                                       &memory_id);
    }
    if (err != NULL) {
      return err;
    }
    int64_t values[INFO_VALUES] = {call->requests,      call->call_rows,     call->index, instance->ordinal,
                                   instance->executes, call->input_memory, call->input_buffers, memory};
    for (int64_t r = 0; r < rows; r++) {
      memcpy((int64_t*)out + r * INFO_VALUES, values, sizeof values);
    }
    return NULL;
  }
  if (strncmp(name, "OUTPUT", 6) != 0) {
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, "cbidentity: unknown output requested");
  }
  char input_name[128];
  snprintf(input_name, sizeof input_name, "INPUT%s", name + 6);
  TRITONBACKEND_Input* input = NULL;
  TRITONSERVER_DataType datatype;
  const int64_t* shape = NULL;
  uint32_t dims = 0, buffers = 0;
  uint64_t byte_size = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_RequestInput(request, input_name, &input);
  if (err == NULL) err = TRITONBACKEND_InputProperties(input, NULL, &datatype, &shape, &dims, &byte_size, &buffers);
  if (err == NULL) err = TRITONBACKEND_ResponseOutput(response, &output, name, datatype, shape, dims);
  if (err == NULL) err = TRITONBACKEND_OutputBuffer(output, &out, byte_size, &memory, &memory_id);
  if (err != NULL) {
    return err;
  }
  if (memory != TRITONSERVER_MEMORY_CPU && memory != TRITONSERVER_MEMORY_CPU_PINNED) {
    return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNSUPPORTED, "cbidentity: output buffer is not in host memory");
  }
  uint64_t offset = 0;
  for (uint32_t b = 0; b < buffers; b++) {
    const void* data = NULL;
    uint64_t size = 0;
    TRITONSERVER_MemoryType in_memory = TRITONSERVER_MEMORY_CPU; /* what we ask for */
    int64_t in_id = 0;
    err = TRITONBACKEND_InputBuffer(input, b, &data, &size, &in_memory, &in_id);
    if (err != NULL) {
      return err;
    }
    if (in_memory != TRITONSERVER_MEMORY_CPU && in_memory != TRITONSERVER_MEMORY_CPU_PINNED) {
      return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_UNSUPPORTED,
                                   "cbidentity: input is not in host memory although CPU was asked for");
    }
    if (offset + size > byte_size) {
      return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INTERNAL, "cbidentity: input buffers exceed its byte size");
    }
    memcpy((char*)out + offset, data, size);
    offset += size;
  }
  return NULL;
}

/* Answer one request: its response (outputs, or the error it asked for). Returns success. */
static int respond(TRITONBACKEND_Request* request, const InstanceState* state, const Call* call)
{
  TRITONBACKEND_Response* response = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_ResponseNew(&response, request);
  if (err != NULL) {
    cb_check(err, "TRITONBACKEND_ResponseNew");
    return 0;
  }
  const char* fail = request_parameter(request, "cb_fail");
  if (fail != NULL && strcmp(fail, "respond") == 0) {
    char msg[384];
    snprintf(msg, sizeof msg, "cbidentity: request %lld of %lld on %s failed as asked (cb_fail=respond)",
             (long long)call->index + 1, (long long)call->requests, state->name);
    err = TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INVALID_ARG, msg);
  }
  uint32_t outputs = 0;
  if (err == NULL) err = TRITONBACKEND_RequestOutputCount(request, &outputs);
  for (uint32_t o = 0; err == NULL && o < outputs; o++) {
    const char* name = NULL;
    err = TRITONBACKEND_RequestOutputName(request, o, &name);
    if (err == NULL) err = add_output(request, response, state, call, name);
  }
  /* The error (if any) stays ours: the server copies it into the response. */
  cb_check(TRITONBACKEND_ResponseSend(response, CB_RESPONSE_COMPLETE_FINAL, err), "TRITONBACKEND_ResponseSend");
  if (err != NULL) {
    TRITONSERVER_ErrorDelete(err);
    return 0;
  }
  return 1;
}

CB_EXPORT TRITONSERVER_Error* TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance* instance,
                                                                  TRITONBACKEND_Request** requests,
                                                                  const uint32_t request_count)
{
  uint64_t exec_start = cb_now_ns();
  void* vstate = NULL;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelInstanceState(instance, &vstate);
  if (err != NULL) {
    return err;
  }
  InstanceState* state = vstate;
  state->executes++;

  /* Asked to fail the whole call: return an error and leave the requests to the server. */
  for (uint32_t r = 0; r < request_count; r++) {
    const char* fail = request_parameter(requests[r], "cb_fail");
    if (fail != NULL && strcmp(fail, "execute") == 0) {
      cb_event(state->model->tag, "execute instance=%s requests=%u returned_error", state->name, request_count);
      char msg[384];
      snprintf(msg, sizeof msg, "cbidentity: execute on %s failed as asked (cb_fail=execute)", state->name);
      return TRITONSERVER_ErrorNew(TRITONSERVER_ERROR_INTERNAL, msg);
    }
  }

  Call call = {.requests = request_count};
  for (uint32_t r = 0; r < request_count; r++) {
    inspect_input0(requests[r], state->model, &call);
    call.call_rows += call.rows;
  }
  /* Before any response: a client that has its response can count on the event being logged. */
  cb_event(state->model->tag, "execute instance=%s requests=%u batch=%lld", state->name, request_count,
           (long long)call.call_rows);
  uint64_t compute_start = cb_now_ns();
  uint64_t compute_end = cb_now_ns();
  for (uint32_t r = 0; r < request_count; r++) {
    call.index = r;
    inspect_input0(requests[r], state->model, &call);
    int ok = respond(requests[r], state, &call);
    cb_check(TRITONBACKEND_ModelInstanceReportStatistics(instance, requests[r], ok, exec_start, compute_start,
                                                         compute_end, cb_now_ns()),
             "TRITONBACKEND_ModelInstanceReportStatistics");
    cb_check(TRITONBACKEND_RequestRelease(requests[r], CB_REQUEST_RELEASE_ALL), "TRITONBACKEND_RequestRelease");
  }
  cb_check(TRITONBACKEND_ModelInstanceReportBatchStatistics(instance, (uint64_t)call.call_rows, exec_start,
                                                            compute_start, compute_end, cb_now_ns()),
           "TRITONBACKEND_ModelInstanceReportBatchStatistics");
  return NULL;
}
