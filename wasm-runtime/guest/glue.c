/* The guest: QuickJS plus the handler API, exported per ABI.md.
 *
 * One instance runs one execution (Wizer snapshot → fresh instance), so the state below is
 * per execution. The natives here are the trusted core: they check capabilities and limits and
 * record mutations, events, view commands, logs and pending extension calls.
 *
 * $state is read lazily (ABI.md "State"): a key's committed JSON comes from the host the first
 * time the handler reads it in a segment (`wk.state_get`), the key list only when the handler
 * enumerates (`wk.state_keys`). Each segment reads the state as committed at its start. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "caps.h"
#include "prelude.h"
#include "quickjs.h"

#define EXPORT(name) __attribute__((export_name(name)))
#define WRAP_PREFIX "(async function($state,$args,$scope,$emit,$view,$ext,$log){"
/* A handler whose source never says `await` runs as a plain function: no async frame, no
 * promise, no job for its return. Padded to WRAP_PREFIX's length so columns on line 1 shift alike. */
#define SYNC_PREFIX "(function      ($state,$args,$scope,$emit,$view,$ext,$log){"
_Static_assert(sizeof SYNC_PREFIX == sizeof WRAP_PREFIX, "both prefixes shift columns alike");
#define WRAP_SUFFIX "\n})"
#define FILENAME "<handler>"
#define GC_HEADROOM_BYTES (4 * 1024 * 1024)
#define SCRATCH_BYTES (64 * 1024) /* state values up to this size arrive in one host call */
#define JS_STACK_BYTES (128 * 1024) /* QuickJS stops deep recursion well before the 1 MiB wasm stack or the host stack ends */

enum { STATUS_DONE = 0, STATUS_SUSPENDED = 1, STATUS_FAILED = 2 };

/* Host imports (host.rs): the committed JSON of a key / the key list as a JSON array; each
 * returns the byte length (-1: the key is not committed) and copies only when it fits in cap. */
__attribute__((import_module("wk"), import_name("state_get")))
int32_t host_state_get(const char *key, int32_t key_len, char *buf, int32_t cap);
__attribute__((import_module("wk"), import_name("state_keys")))
int32_t host_state_keys(char *buf, int32_t cap);

static JSRuntime *rt;
static JSContext *ctx;
static JSValue start_fn; /* returned by the prelude */

/* per segment: what this segment knows of $state (null-prototype objects keyed by state key) */
static JSValue known = JS_UNDEFINED;     /* key → value, read from the host or written */
static JSValue absent = JS_UNDEFINED;    /* key → true, not committed or deleted */
static JSValue keyset = JS_UNDEFINED;    /* key → true, the visible keys; built at the first enumeration */
static JSValue early = JS_UNDEFINED;     /* [key, deleted] writes made before keyset was built */
static JSValue snapshots = JS_UNDEFINED; /* key → JSON of object values as read, for nested diffs */
static char *scratch;                    /* host replies land here, NUL-terminated */
static size_t scratch_cap;
/* per execution */
static JSValue promise = JS_UNDEFINED;   /* the handler's promise (async, or a promise it returned) */
static JSPromiseStateEnum settled = JS_PROMISE_NOT_A_PROMISE; /* a plain handler's outcome, when not a promise */
static JSValue settled_value = JS_UNDEFINED; /* its return value or what it threw */
static JSValue extensions = JS_UNDEFINED;
static JSValue *pending_funcs; /* [2*callId .. 2*callId+1] = resolve, reject */
static uint32_t next_call_id = 1;
static uint32_t segment_calls;
static uint32_t host_calls, mutation_count, event_count, log_count;
static uint32_t max_host_calls = 1000, max_mutations = 1000, max_events = 1000, max_logs = 1000;
static const char *fatal_code;   /* set when a limit ends the execution regardless of catch */
static char fatal_message[160];
static JSValue denied = JS_UNDEFINED; /* the last PERMISSION_DENIED error we threw */
static const char *nested_denied;     /* key of a nested change without write permission */
static wk_buf out, muts, events, views, logs, calls;

/* ---------- small helpers ---------- */

/* JSON text of v, or JS_EXCEPTION with a TypeError when v is not representable in JSON. */
static JSValue to_json(JSValueConst v, const char *what) {
  if (JS_IsFunction(ctx, v) || JS_IsSymbol(v)) {
    return JS_ThrowTypeError(ctx, "%s is not JSON-serializable (a %s)", what,
                             JS_IsSymbol(v) ? "symbol" : "function");
  }
  /* primitives other than strings: their JSON is their ToString (non-finite numbers are null),
   * without JSON.stringify's machinery (counters are the common state value) */
  if (JS_IsNull(v) || JS_IsBool(v) || (JS_IsNumber(v) && !JS_IsBigInt(v))) {
    double d = 0;
    if (JS_IsNumber(v) && (JS_ToFloat64(ctx, &d, v) < 0 || !isfinite(d))) return JS_NewString(ctx, "null");
    return JS_ToString(ctx, v);
  }
  JSValue s = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
  if (JS_IsException(s)) {
    JSValue e = JS_GetException(ctx);
    const char *m = JS_ToCString(ctx, e);
    JS_FreeValue(ctx, e);
    JSValue r = JS_ThrowTypeError(ctx, "%s is not JSON-serializable: %s", what, m ? m : "?");
    JS_FreeCString(ctx, m);
    return r;
  }
  return s;
}

static void put_json_value_string(wk_buf *b, JSValueConst json) {
  size_t n;
  const char *c = JS_ToCStringLen(ctx, &n, json);
  if (c) {
    buf_put(b, c, n);
    JS_FreeCString(ctx, c);
  }
}

static JSValue throw_coded(const char *code, const char *fmt, const char *a, size_t alen) {
  JSValue err = JS_NewError(ctx);
  char msg[256];
  snprintf(msg, sizeof msg, fmt, (int)alen, a);
  JS_SetPropertyStr(ctx, err, "message", JS_NewString(ctx, msg));
  JS_SetPropertyStr(ctx, err, "code", JS_NewString(ctx, code));
  if (strcmp(code, "PERMISSION_DENIED") == 0) {
    JS_FreeValue(ctx, denied);
    denied = JS_DupValue(ctx, err);
  }
  return JS_Throw(ctx, err);
}

/* Ends the execution with RESOURCE_LIMIT even if the handler catches the error. */
static JSValue limit_hit(const char *what, uint32_t max) {
  fatal_code = "RESOURCE_LIMIT";
  snprintf(fatal_message, sizeof fatal_message, "%s limit of %u exceeded", what, (unsigned)max);
  JSValue err = JS_NewError(ctx);
  JS_SetPropertyStr(ctx, err, "message", JS_NewString(ctx, fatal_message));
  JS_SetPropertyStr(ctx, err, "code", JS_NewString(ctx, "RESOURCE_LIMIT"));
  JS_SetUncatchableError(ctx, err);
  return JS_Throw(ctx, err);
}

static int interrupt_handler(JSRuntime *r, void *opaque) {
  (void)r;
  (void)opaque;
  return fatal_code != NULL;
}

static bool count_host_call(void) { return ++host_calls <= max_host_calls; }

/* ---------- $state natives ---------- */

typedef struct {
  const char *s;
  size_t n;
} str;

static bool arg_key(JSValueConst v, str *k) {
  k->s = JS_ToCStringLen(ctx, &k->n, v);
  return k->s != NULL;
}

/* Reads the first two arguments as strings; on failure nothing is left to free. */
static bool arg_keys2(JSValueConst *argv, str *a, str *b) {
  if (!arg_key(argv[0], a)) return false;
  if (arg_key(argv[1], b)) return true;
  JS_FreeCString(ctx, a->s);
  return false;
}

/* QuickJS encodes a lone surrogate as ED A0..BF xx; well-formed UTF-8 never has ED ≥ A0. */
static bool well_formed(const str *k) {
  for (size_t i = 0; i + 1 < k->n; i++) {
    if ((unsigned char)k->s[i] == 0xED && (unsigned char)k->s[i + 1] >= 0xA0) return false;
  }
  return true;
}

/* A state key: a string of well-formed Unicode. A lone surrogate would reach the host as a
 * different key than the one the capability check saw, so it is refused (TypeError, catchable,
 * code INVALID_STATE_KEY). */
static bool state_key(JSValueConst v, str *k) {
  if (!arg_key(v, k)) return false;
  if (well_formed(k)) return true;
  JS_FreeCString(ctx, k->s);
  JS_ThrowTypeError(ctx, "state keys must be well-formed Unicode; this one has a lone surrogate");
  JSValue err = JS_GetException(ctx);
  JS_SetPropertyStr(ctx, err, "code", JS_NewString(ctx, "INVALID_STATE_KEY"));
  JS_Throw(ctx, err);
  return false;
}

static JSValue new_map(void) { return JS_NewObjectProto(ctx, JS_NULL); }

static bool has_own(JSValueConst obj, JSAtom atom) {
  return JS_IsObject(obj) && JS_GetOwnProperty(ctx, NULL, obj, atom) > 0;
}

static void put_own(JSValueConst obj, JSAtom atom, JSValue v) {
  JS_DefinePropertyValue(ctx, obj, atom, v, JS_PROP_C_W_E);
}

/* Forgets what the previous segment knew: this one reads the state as committed now. */
static void begin_state_view(void) {
  JSValue *held[] = {&known, &absent, &keyset, &early, &snapshots};
  for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) JS_FreeValue(ctx, *held[i]);
  known = new_map();
  absent = new_map();
  keyset = JS_UNDEFINED;
  early = JS_NewArray(ctx);
  snapshots = new_map();
}

static bool scratch_fits(size_t n) {
  if (n < scratch_cap) return true;
  size_t cap = scratch_cap ? scratch_cap : 4096;
  while (cap <= n) cap *= 2;
  char *p = realloc(scratch, cap);
  if (!p) return false;
  scratch = p;
  scratch_cap = cap;
  return true;
}

/* One host reply into scratch: its length, -1 when the host has none, -2 when out of memory. */
static int32_t host_reply(const str *key) {
  int32_t room = scratch_cap ? (int32_t)scratch_cap - 1 : 0;
  int32_t n = key ? host_state_get(key->s, (int32_t)key->n, scratch, room) : host_state_keys(scratch, room);
  if (n < 0) return -1;
  if (n > room) {
    if (!scratch_fits((size_t)n)) return -2;
    n = key ? host_state_get(key->s, (int32_t)key->n, scratch, (int32_t)scratch_cap - 1)
            : host_state_keys(scratch, (int32_t)scratch_cap - 1);
  }
  scratch[n] = '\0';
  return n;
}

static void remember_snapshot(JSAtom atom, JSValueConst value) {
  if (!JS_IsObject(value)) return;
  JSValue json = to_json(value, "state value");
  if (JS_IsException(json)) {
    JS_FreeValue(ctx, JS_GetException(ctx));
    return;
  }
  put_own(snapshots, atom, json);
}

/* The value of a readable key: known in this segment, or fetched from the host (one call). */
static JSValue load_key(const str *k, JSAtom atom) {
  JSValue v = JS_GetProperty(ctx, known, atom);
  if (!JS_IsUndefined(v) || has_own(absent, atom)) return v;
  int32_t n = host_reply(k);
  if (n == -2) return JS_ThrowOutOfMemory(ctx);
  if (n == -1) {
    put_own(absent, atom, JS_TRUE);
    return JS_UNDEFINED;
  }
  v = JS_ParseJSON(ctx, scratch, (size_t)n, "<state>");
  if (JS_IsException(v)) return v;
  put_own(known, atom, JS_DupValue(ctx, v));
  remember_snapshot(atom, v);
  return v;
}

static JSValue js_state_get(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str k;
  if (!state_key(argv[0], &k)) return JS_EXCEPTION;
  JSValue r;
  if (!caps_allow("state:read:", k.s, k.n)) {
    /* JSON.stringify($state) looks up `toJSON` first: unreadable, it reads as absent, so
     * stringifying works under narrow grants (and still shows no value it may not read) */
    bool to_json_probe = k.n == 6 && memcmp(k.s, "toJSON", 6) == 0;
    r = to_json_probe ? JS_UNDEFINED : throw_coded("PERMISSION_DENIED", "state:read:%.*s is not granted", k.s, k.n);
  } else {
    JSAtom atom = JS_ValueToAtom(c, argv[0]);
    r = load_key(&k, atom);
    JS_FreeAtom(c, atom);
  }
  JS_FreeCString(c, k.s);
  return r;
}

static void record_mutation(const char *key, size_t key_len, JSValueConst json, bool is_delete) {
  buf_next_item(&muts);
  buf_puts(&muts, "{\"key\":");
  buf_put_json_string(&muts, key, key_len);
  if (is_delete) {
    buf_puts(&muts, ",\"operation\":\"delete\"}");
    return;
  }
  buf_puts(&muts, ",\"value\":");
  put_json_value_string(&muts, json);
  buf_puts(&muts, ",\"operation\":\"set\"}");
}

static JSValue write_check(str *k) {
  if (!caps_allow("state:write:", k->s, k->n)) {
    return throw_coded("PERMISSION_DENIED", "state:write:%.*s is not granted", k->s, k->n);
  }
  if (++mutation_count > max_mutations) return limit_hit("state mutation", max_mutations);
  return JS_UNDEFINED;
}

static void keyset_write(JSAtom atom, bool deleted) {
  if (deleted) JS_DeleteProperty(ctx, keyset, atom, 0);
  else if (!has_own(keyset, atom)) put_own(keyset, atom, JS_TRUE);
}

/* Keeps the visible key list in step with a write (or notes the write for when it is built). */
static void note_write(JSValueConst key, JSAtom atom, bool deleted) {
  if (JS_IsObject(keyset)) {
    keyset_write(atom, deleted);
    return;
  }
  JSValue entry = JS_NewArray(ctx);
  JS_SetPropertyUint32(ctx, entry, 0, JS_DupValue(ctx, key));
  JS_SetPropertyUint32(ctx, entry, 1, JS_NewBool(ctx, deleted));
  int64_t n = 0;
  JS_GetLength(ctx, early, &n);
  JS_SetPropertyUint32(ctx, early, (uint32_t)n, entry);
}

static void forget_key(JSValueConst key, JSAtom atom) {
  JS_DeleteProperty(ctx, known, atom, 0);
  JS_DeleteProperty(ctx, snapshots, atom, 0);
  put_own(absent, atom, JS_TRUE);
  note_write(key, atom, true);
}

static JSValue js_state_set(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str k;
  if (!state_key(argv[0], &k)) return JS_EXCEPTION;
  JSValue r = write_check(&k);
  JSValue json = JS_UNDEFINED;
  if (!JS_IsException(r)) {
    json = JS_IsUndefined(argv[1]) ? JS_UNDEFINED : to_json(argv[1], "state value");
    if (JS_IsException(json)) r = JS_EXCEPTION;
  }
  if (!JS_IsException(r)) {
    JSAtom atom = JS_ValueToAtom(c, argv[0]);
    if (JS_IsUndefined(argv[1])) {
      /* undefined is not JSON: setting it means removing the key */
      forget_key(argv[0], atom);
      record_mutation(k.s, k.n, JS_UNDEFINED, true);
    } else {
      put_own(known, atom, JS_DupValue(c, argv[1]));
      JS_DeleteProperty(c, absent, atom, 0);
      JS_DeleteProperty(c, snapshots, atom, 0);
      if (JS_IsObject(argv[1])) put_own(snapshots, atom, JS_DupValue(c, json));
      note_write(argv[0], atom, false);
      record_mutation(k.s, k.n, json, false);
    }
    JS_FreeAtom(c, atom);
  }
  JS_FreeValue(c, json);
  JS_FreeCString(c, k.s);
  return r;
}

static JSValue js_state_delete(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str k;
  if (!state_key(argv[0], &k)) return JS_EXCEPTION;
  JSValue r = write_check(&k);
  if (!JS_IsException(r)) {
    JSAtom atom = JS_ValueToAtom(c, argv[0]);
    forget_key(argv[0], atom);
    JS_FreeAtom(c, atom);
    record_mutation(k.s, k.n, JS_UNDEFINED, true);
  }
  JS_FreeCString(c, k.s);
  return r;
}

/* Whether a readable key exists, without fetching its value when nothing knows it yet. */
static JSValue js_state_has(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str k;
  if (!state_key(argv[0], &k)) return JS_EXCEPTION;
  bool has = false;
  if (caps_allow("state:read:", k.s, k.n)) {
    JSAtom atom = JS_ValueToAtom(c, argv[0]);
    if (has_own(known, atom)) has = true;
    else if (has_own(absent, atom)) has = false;
    else if (JS_IsObject(keyset)) has = has_own(keyset, atom);
    else has = host_state_get(k.s, (int32_t)k.n, scratch, 0) >= 0;
    JS_FreeAtom(c, atom);
  }
  JS_FreeCString(c, k.s);
  return JS_NewBool(c, has);
}

/* Builds keyset from the host's key list, then replays the writes made before. */
static bool build_keyset(void) {
  int32_t n = host_reply(NULL);
  if (n == -2) {
    JS_ThrowOutOfMemory(ctx);
    return false;
  }
  JSValue list = n < 0 ? JS_NewArray(ctx) : JS_ParseJSON(ctx, scratch, (size_t)n, "<state keys>");
  if (JS_IsException(list)) return false;
  keyset = new_map();
  int64_t len = 0, writes = 0;
  JS_GetLength(ctx, list, &len);
  for (int64_t i = 0; i < len; i++) {
    JSValue key = JS_GetPropertyUint32(ctx, list, (uint32_t)i);
    JSAtom atom = JS_ValueToAtom(ctx, key);
    put_own(keyset, atom, JS_TRUE);
    JS_FreeAtom(ctx, atom);
    JS_FreeValue(ctx, key);
  }
  JS_FreeValue(ctx, list);
  JS_GetLength(ctx, early, &writes);
  for (int64_t i = 0; i < writes; i++) {
    JSValue entry = JS_GetPropertyUint32(ctx, early, (uint32_t)i);
    JSValue key = JS_GetPropertyUint32(ctx, entry, 0), deleted = JS_GetPropertyUint32(ctx, entry, 1);
    JSAtom atom = JS_ValueToAtom(ctx, key);
    keyset_write(atom, JS_ToBool(ctx, deleted));
    JS_FreeAtom(ctx, atom);
    JS_FreeValue(ctx, key);
    JS_FreeValue(ctx, deleted);
    JS_FreeValue(ctx, entry);
  }
  JS_FreeValue(ctx, early);
  early = JS_NewArray(ctx);
  return true;
}

/* Keys the handler may read, in JS property order. */
static JSValue js_state_keys(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  if (!JS_IsObject(keyset) && !build_keyset()) return JS_EXCEPTION;
  JSPropertyEnum *tab;
  uint32_t len;
  if (JS_GetOwnPropertyNames(c, &tab, &len, keyset, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY) < 0) return JS_EXCEPTION;
  JSValue arr = JS_NewArray(c);
  uint32_t j = 0;
  for (uint32_t i = 0; i < len; i++) {
    JSValue name = JS_AtomToString(c, tab[i].atom);
    str k;
    if (arg_key(name, &k)) {
      if (caps_allow("state:read:", k.s, k.n)) JS_SetPropertyUint32(c, arr, j++, JS_DupValue(c, name));
      JS_FreeCString(c, k.s);
    }
    JS_FreeValue(c, name);
  }
  JS_FreePropertyEnum(c, tab, len);
  return arr;
}

/* ---------- $emit, $view, $log ---------- */

static JSValue js_emit(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str k;
  if (!arg_key(argv[0], &k)) return JS_EXCEPTION;
  JSValue r = JS_UNDEFINED;
  if (!caps_allow("events:emit:", k.s, k.n)) {
    r = throw_coded("PERMISSION_DENIED", "events:emit:%.*s is not granted", k.s, k.n);
  } else if (!count_host_call()) {
    r = limit_hit("host call", max_host_calls);
  } else if (++event_count > max_events) {
    r = limit_hit("event", max_events);
  } else {
    JSValue json = JS_IsUndefined(argv[1]) ? JS_NewString(c, "null") : to_json(argv[1], "event payload");
    if (JS_IsException(json)) {
      r = JS_EXCEPTION;
    } else {
      buf_next_item(&events);
      buf_puts(&events, "{\"name\":");
      buf_put_json_string(&events, k.s, k.n);
      buf_puts(&events, ",\"payload\":");
      put_json_value_string(&events, json);
      buf_puts(&events, "}");
    }
    JS_FreeValue(c, json);
  }
  JS_FreeCString(c, k.s);
  return r;
}

static JSValue js_view(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str type, id;
  if (!arg_keys2(argv, &type, &id)) return JS_EXCEPTION;
  JSValue r = JS_UNDEFINED;
  if (!caps_allow("view:update:", id.s, id.n)) {
    r = throw_coded("PERMISSION_DENIED", "view:update:%.*s is not granted", id.s, id.n);
  } else if (!count_host_call()) {
    r = limit_hit("host call", max_host_calls);
  } else {
    JSValue json = JS_IsUndefined(argv[2]) ? JS_UNDEFINED : to_json(argv[2], "view payload");
    if (JS_IsException(json)) {
      r = JS_EXCEPTION;
    } else {
      buf_next_item(&views);
      buf_puts(&views, "{\"type\":");
      buf_put_json_string(&views, type.s, type.n);
      buf_puts(&views, ",\"viewId\":");
      buf_put_json_string(&views, id.s, id.n);
      if (!JS_IsUndefined(json)) {
        buf_puts(&views, ",\"payload\":");
        put_json_value_string(&views, json);
      }
      buf_puts(&views, "}");
    }
    JS_FreeValue(c, json);
  }
  JS_FreeCString(c, type.s);
  JS_FreeCString(c, id.s);
  return r;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e3 + (double)(ts.tv_nsec / 1000000);
}

/* $log(level, parts): strings as they are, everything else as JSON, joined by spaces. */
static JSValue js_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  if (!count_host_call()) return limit_hit("host call", max_host_calls);
  if (++log_count > max_logs) return JS_UNDEFINED; /* extra logs are dropped, not fatal */
  str level;
  if (!arg_key(argv[0], &level)) return JS_EXCEPTION;
  wk_buf msg = {0};
  int64_t n = 0;
  JS_GetLength(c, argv[1], &n);
  for (int64_t i = 0; i < n && i < 64; i++) {
    JSValue part = JS_GetPropertyUint32(c, argv[1], (uint32_t)i);
    if (i) buf_put(&msg, " ", 1);
    JSValue text = JS_IsString(part) ? JS_DupValue(c, part) : JS_JSONStringify(c, part, JS_UNDEFINED, JS_UNDEFINED);
    if (JS_IsException(text)) JS_FreeValue(c, JS_GetException(c));
    size_t len;
    const char *s = JS_IsString(text) ? JS_ToCStringLen(c, &len, text) : NULL;
    if (s) {
      buf_put(&msg, s, len < 4096 ? len : 4096);
      JS_FreeCString(c, s);
    } else {
      buf_puts(&msg, JS_IsUndefined(part) ? "undefined" : "[unserializable]");
    }
    JS_FreeValue(c, text);
    JS_FreeValue(c, part);
  }
  buf_next_item(&logs);
  buf_puts(&logs, "{\"level\":");
  buf_put_json_string(&logs, level.s, level.n);
  buf_puts(&logs, ",\"message\":");
  buf_put_json_string(&logs, msg.data ? msg.data : "", msg.len);
  buf_puts(&logs, ",\"timestamp\":");
  buf_put_u64(&logs, (uint64_t)now_ms());
  buf_puts(&logs, "}");
  free(msg.data);
  JS_FreeCString(c, level.s);
  return JS_UNDEFINED;
}

/* ---------- $ext ---------- */

static bool grow_pending(uint32_t id) {
  static uint32_t cap;
  if (2 * id + 2 <= cap) return true;
  uint32_t ncap = cap ? cap * 2 : 16;
  while (ncap < 2 * id + 2) ncap *= 2;
  JSValue *p = realloc(pending_funcs, ncap * sizeof *p);
  if (!p) return false;
  for (uint32_t i = cap; i < ncap; i++) p[i] = JS_UNDEFINED;
  pending_funcs = p;
  cap = ncap;
  return true;
}

static JSValue js_ext_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  str ext, method;
  if (!arg_keys2(argv, &ext, &method)) return JS_EXCEPTION;
  JSValue r = JS_UNDEFINED;
  JSValue json = JS_UNDEFINED;
  if (!caps_allow("ext:", ext.s, ext.n)) {
    r = throw_coded("PERMISSION_DENIED", "ext:%.*s is not granted", ext.s, ext.n);
  } else if (!count_host_call()) {
    r = limit_hit("host call", max_host_calls);
  } else if (JS_IsException(json = to_json(argv[2], "extension call arguments"))) {
    r = JS_EXCEPTION;
  } else if (!grow_pending(next_call_id)) {
    r = JS_ThrowOutOfMemory(c);
  } else {
    uint32_t id = next_call_id++;
    r = JS_NewPromiseCapability(c, &pending_funcs[2 * id]);
    segment_calls++;
    buf_next_item(&calls);
    buf_puts(&calls, "{\"callId\":");
    buf_put_u64(&calls, id);
    buf_puts(&calls, ",\"extension\":");
    buf_put_json_string(&calls, ext.s, ext.n);
    buf_puts(&calls, ",\"method\":");
    buf_put_json_string(&calls, method.s, method.n);
    buf_puts(&calls, ",\"args\":");
    put_json_value_string(&calls, json);
    buf_puts(&calls, "}");
  }
  JS_FreeValue(c, json);
  JS_FreeCString(c, ext.s);
  JS_FreeCString(c, method.s);
  return r;
}

/* ---------- errors ---------- */

static JSValue get_prop(JSValueConst obj, const char *name) {
  return JS_IsObject(obj) ? JS_GetPropertyStr(ctx, obj, name) : JS_UNDEFINED;
}

/* Finds `<handler>:LINE:COL` in a stack trace; columns on line 1 exclude the wrapper prefix. */
static bool find_position(const char *stack, int *line, int *column) {
  const char *p = stack ? strstr(stack, FILENAME ":") : NULL;
  if (!p) return false;
  p += sizeof FILENAME;
  char *end;
  long l = strtol(p, &end, 10);
  if (end == p || *end != ':') return false;
  long c = strtol(end + 1, &end, 10);
  if (l == 1) c -= (long)(sizeof WRAP_PREFIX - 1);
  *line = (int)l;
  *column = c > 0 ? (int)c : 1;
  return true;
}

static void put_error_fields(const char *code, const char *message, size_t mlen, const char *stack) {
  buf_puts(&out, "\"error\":{\"code\":\"");
  buf_puts(&out, code);
  buf_puts(&out, "\",\"message\":");
  buf_put_json_string(&out, message, mlen);
  int line, column;
  if (find_position(stack, &line, &column)) {
    buf_puts(&out, ",\"line\":");
    buf_put_u64(&out, (uint64_t)line);
    buf_puts(&out, ",\"column\":");
    buf_put_u64(&out, (uint64_t)column);
  }
  if (stack) {
    buf_puts(&out, ",\"stack\":");
    buf_put_json_string(&out, stack, strlen(stack));
  }
  buf_puts(&out, "}");
}

/* Describes a thrown value: `Name: message` for errors, JSON for other values. */
static void put_thrown(const char *code, JSValueConst err) {
  JSValue text;
  if (JS_IsError(err)) {
    JSValue name = get_prop(err, "name"), msg = get_prop(err, "message");
    const char *n = JS_ToCString(ctx, name), *m = JS_ToCString(ctx, msg);
    char tmp[1024];
    if (n && strcmp(n, "Error") != 0) snprintf(tmp, sizeof tmp, "%s: %s", n, m ? m : "");
    else snprintf(tmp, sizeof tmp, "%s", m ? m : "");
    text = JS_NewString(ctx, tmp);
    JS_FreeCString(ctx, n);
    JS_FreeCString(ctx, m);
    JS_FreeValue(ctx, name);
    JS_FreeValue(ctx, msg);
  } else if (JS_IsObject(err)) {
    text = JS_JSONStringify(ctx, err, JS_UNDEFINED, JS_UNDEFINED);
  } else {
    text = JS_ToString(ctx, err);
  }
  if (JS_IsException(text) || !JS_IsString(text)) {
    JS_FreeValue(ctx, JS_IsException(text) ? JS_GetException(ctx) : text);
    text = JS_NewString(ctx, "uncaught exception");
  }
  JSValue stack = get_prop(err, "stack");
  const char *s = JS_IsString(stack) ? JS_ToCString(ctx, stack) : NULL;
  size_t mlen;
  const char *m = JS_ToCStringLen(ctx, &mlen, text);
  put_error_fields(code, m ? m : "", m ? mlen : 0, s);
  JS_FreeCString(ctx, m);
  JS_FreeCString(ctx, s);
  JS_FreeValue(ctx, stack);
  JS_FreeValue(ctx, text);
}

static const char *code_of(JSValueConst err) {
  if (fatal_code) return fatal_code;
  if (JS_IsObject(denied) && JS_IsStrictEqual(ctx, err, denied)) return "PERMISSION_DENIED";
  return "EXECUTION_ERROR";
}

/* ---------- segments ---------- */

static void run_jobs(void) {
  JSContext *c;
  for (;;) {
    int r = JS_ExecutePendingJob(rt, &c);
    if (r == 0) break;
    if (r < 0) {
      JS_FreeValue(ctx, JS_GetException(ctx));
      if (fatal_code) break;
    }
  }
}

/* Records a `set` for every object value read from $state whose JSON changed since it was read. */
static void diff_nested(void) {
  JSPropertyEnum *tab;
  uint32_t len;
  if (JS_GetOwnPropertyNames(ctx, &tab, &len, snapshots, JS_GPN_STRING_MASK) < 0) return;
  for (uint32_t i = 0; i < len && !nested_denied && !fatal_code; i++) {
    JSValue before = JS_GetProperty(ctx, snapshots, tab[i].atom);
    JSValue now = JS_GetProperty(ctx, known, tab[i].atom);
    JSValue json = to_json(now, "state value");
    size_t an, bn;
    const char *a = JS_IsString(json) ? JS_ToCStringLen(ctx, &an, json) : NULL;
    const char *b = JS_ToCStringLen(ctx, &bn, before);
    if (JS_IsException(json)) JS_FreeValue(ctx, JS_GetException(ctx));
    if (a && b && (an != bn || memcmp(a, b, an) != 0)) {
      JSValue key = JS_AtomToString(ctx, tab[i].atom);
      str k;
      if (arg_key(key, &k)) {
        if (!caps_allow("state:write:", k.s, k.n)) {
          nested_denied = strndup(k.s, k.n);
        } else if (++mutation_count > max_mutations) {
          JS_FreeValue(ctx, limit_hit("state mutation", max_mutations));
          JS_FreeValue(ctx, JS_GetException(ctx));
        } else {
          record_mutation(k.s, k.n, json, false);
          JS_SetProperty(ctx, snapshots, tab[i].atom, JS_DupValue(ctx, json));
        }
        JS_FreeCString(ctx, k.s);
      }
      JS_FreeValue(ctx, key);
    }
    JS_FreeCString(ctx, a);
    JS_FreeCString(ctx, b);
    JS_FreeValue(ctx, json);
    JS_FreeValue(ctx, now);
    JS_FreeValue(ctx, before);
  }
  JS_FreePropertyEnum(ctx, tab, len);
}

static void put_list(const char *name, wk_buf *list) {
  buf_puts(&out, ",\"");
  buf_puts(&out, name);
  buf_puts(&out, "\":[");
  buf_put(&out, list->data, list->len);
  buf_puts(&out, "]");
  if (list->failed) out.failed = true;
}

/* Writes the status and error/returnValue part; returns the ABI status. */
static int put_outcome(void) {
  if (fatal_code) {
    buf_puts(&out, "\"error\",");
    put_error_fields(fatal_code, fatal_message, strlen(fatal_message), NULL);
    return STATUS_DONE;
  }
  if (nested_denied) {
    char msg[256];
    int n = snprintf(msg, sizeof msg, "state:write:%s is not granted (nested change)", nested_denied);
    buf_puts(&out, "\"error\",");
    put_error_fields("PERMISSION_DENIED", msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, NULL);
    return STATUS_DONE;
  }
  JSPromiseStateEnum ps = JS_IsPromise(promise) ? JS_PromiseState(ctx, promise) : settled;
  if (ps == JS_PROMISE_PENDING) {
    if (segment_calls > 0) {
      buf_puts(&out, "\"suspended\"");
      return STATUS_SUSPENDED;
    }
    static const char msg[] = "the handler awaits a promise that nothing can settle";
    buf_puts(&out, "\"error\",");
    put_error_fields("EXECUTION_ERROR", msg, sizeof msg - 1, NULL);
    return STATUS_DONE;
  }
  JSValue value = JS_IsPromise(promise) ? JS_PromiseResult(ctx, promise) : JS_DupValue(ctx, settled_value);
  if (ps == JS_PROMISE_REJECTED) {
    buf_puts(&out, "\"error\",");
    put_thrown(code_of(value), value);
  } else if (JS_IsUndefined(value)) {
    buf_puts(&out, "\"success\"");
  } else {
    JSValue json = to_json(value, "return value");
    if (JS_IsException(json)) {
      JSValue err = JS_GetException(ctx);
      buf_puts(&out, "\"error\",");
      put_thrown("EXECUTION_ERROR", err);
      JS_FreeValue(ctx, err);
    } else {
      buf_puts(&out, "\"success\",\"returnValue\":");
      put_json_value_string(&out, json);
    }
    JS_FreeValue(ctx, json);
  }
  JS_FreeValue(ctx, value);
  return STATUS_DONE;
}

static int finish_segment(void) {
  run_jobs();
  diff_nested();
  buf_reset(&out);
  buf_puts(&out, "{\"status\":");
  int status = put_outcome();
  put_list("stateMutations", &muts);
  put_list("events", &events);
  put_list("viewCommands", &views);
  put_list("logs", &logs);
  put_list("pendingCalls", status == STATUS_SUSPENDED ? &calls : &(wk_buf){0});
  buf_puts(&out, ",\"metrics\":{\"hostCalls\":");
  buf_put_u64(&out, host_calls);
  buf_puts(&out, "}}");
  return out.failed ? STATUS_FAILED : status;
}

static void start_segment(void) {
  buf_reset(&muts);
  buf_reset(&events);
  buf_reset(&views);
  buf_reset(&logs);
  buf_reset(&calls);
  segment_calls = 0;
}

/* An outcome decided before the handler ran (bad context, bad bytecode). */
static int fail_early(const char *code, const char *message) {
  buf_reset(&out);
  buf_puts(&out, "{\"status\":\"error\",");
  put_error_fields(code, message, strlen(message), NULL);
  buf_puts(&out, ",\"stateMutations\":[],\"events\":[],\"viewCommands\":[],\"logs\":[],\"pendingCalls\":[],\"metrics\":{\"hostCalls\":0}}");
  return out.failed ? STATUS_FAILED : STATUS_DONE;
}

/* ---------- the execution context (ABI.md "Context") ---------- */

#define CONTEXT_MAGIC "WKC1"

/* A cursor over the binary context; every read checks the bounds. */
typedef struct {
  const uint8_t *p, *end;
} reader;

static bool read_u32(reader *r, uint32_t *v) {
  if (r->end - r->p < 4) return false;
  *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
  r->p += 4;
  return true;
}

/* A length-prefixed byte string and the NUL after it (JS_ParseJSON reads up to a NUL). */
static bool read_bytes(reader *r, str *out) {
  uint32_t n;
  if (!read_u32(r, &n) || (size_t)(r->end - r->p) <= n || r->p[n] != 0) return false;
  out->s = (const char *)r->p;
  out->n = n;
  r->p += n + 1;
  return true;
}

/* The JSON text of an optional section, parsed; `fallback` when the section is empty. */
static JSValue section_json(const str *text, JSValue fallback, const char *what) {
  if (text->n == 0) return fallback;
  JS_FreeValue(ctx, fallback);
  return JS_ParseJSON(ctx, text->s, text->n, what);
}

typedef struct {
  JSValue extensions, args, scope;
  double seed;
} context_values;

/* Reads limits, capabilities, seed and the JSON sections; false (nothing left to free) when the
 * context is malformed or out of memory. */
static bool read_context(const uint8_t *input, size_t len, context_values *cv) {
  reader r = {input, input + len};
  uint32_t caps_n, lo, hi;
  str ext, args, scope;
  if (len < 4 || memcmp(input, CONTEXT_MAGIC, 4) != 0) return false;
  r.p += 4;
  if (!read_u32(&r, &max_host_calls) || !read_u32(&r, &max_mutations) || !read_u32(&r, &max_events) ||
      !read_u32(&r, &max_logs) || !read_u32(&r, &lo) || !read_u32(&r, &hi) || !read_u32(&r, &caps_n)) {
    return false;
  }
  for (uint32_t i = 0; i < caps_n; i++) {
    str token;
    if (!read_bytes(&r, &token) || !caps_add(token.s, token.n)) return false;
  }
  if (!read_bytes(&r, &ext) || !read_bytes(&r, &args) || !read_bytes(&r, &scope) || r.p != r.end) return false;
  cv->seed = (double)hi * 4294967296.0 + (double)lo;
  cv->extensions = section_json(&ext, JS_NewObject(ctx), "<extensions>");
  cv->args = section_json(&args, JS_NULL, "<args>");
  cv->scope = section_json(&scope, JS_NewObject(ctx), "<scope>");
  if (JS_IsObject(cv->extensions) && JS_IsObject(cv->scope) && !JS_IsException(cv->args)) return true;
  JS_FreeValue(ctx, JS_GetException(ctx));
  JS_FreeValue(ctx, cv->extensions);
  JS_FreeValue(ctx, cv->args);
  JS_FreeValue(ctx, cv->scope);
  return false;
}

/* Starts the handler: an async one yields its promise; a plain one its value or what it threw
 * (a returned promise or thenable is followed like an async function's return). */
static void start_handler(JSValueConst fn, const context_values *cv) {
  JSValue argv[5] = {fn, cv->args, cv->scope, extensions, JS_NewFloat64(ctx, cv->seed)};
  JSValue r = JS_Call(ctx, start_fn, JS_UNDEFINED, 5, argv);
  if (JS_IsException(r)) {
    settled = JS_PROMISE_REJECTED;
    settled_value = JS_GetException(ctx);
    return;
  }
  JSValue then = JS_IsObject(r) && !JS_IsPromise(r) ? JS_GetPropertyStr(ctx, r, "then") : JS_UNDEFINED;
  if (JS_IsException(then)) {
    JS_FreeValue(ctx, r);
    settled = JS_PROMISE_REJECTED;
    settled_value = JS_GetException(ctx);
  } else if (JS_IsPromise(r) || !JS_IsFunction(ctx, then)) {
    if (JS_IsPromise(r)) promise = r;
    else settled_value = r;
    settled = JS_PROMISE_FULFILLED;
  } else {
    JSValue funcs[2];
    promise = JS_NewPromiseCapability(ctx, funcs);
    JS_FreeValue(ctx, JS_Call(ctx, funcs[0], JS_UNDEFINED, 1, (JSValueConst *)&r));
    JS_FreeValue(ctx, funcs[0]);
    JS_FreeValue(ctx, funcs[1]);
    JS_FreeValue(ctx, r);
  }
  JS_FreeValue(ctx, then);
}

/* ---------- exports ---------- */

EXPORT("wk_alloc") void *wk_alloc(int32_t len) {
  if (len < 0) return NULL;
  char *p = malloc((size_t)len + 1);
  if (p) p[len] = '\0';
  return p;
}

EXPORT("wk_output_ptr") const char *wk_output_ptr(void) { return out.data; }
EXPORT("wk_output_len") int32_t wk_output_len(void) { return (int32_t)out.len; }

/* Whether the source contains `await` anywhere (strings and comments included: a false yes only
 * costs the async frame). An escaped `aw\u0061it` is never the keyword. */
static bool says_await(const char *src, size_t len) {
  for (size_t i = 0; i + 5 <= len; i++) {
    if (src[i] == 'a' && memcmp(src + i, "await", 5) == 0) return true;
  }
  return false;
}

EXPORT("wk_compile") int32_t wk_compile(const char *src, int32_t len) {
  JS_UpdateStackTop(rt);
  size_t plen = sizeof WRAP_PREFIX - 1, slen = sizeof WRAP_SUFFIX - 1;
  char *code = malloc(plen + (size_t)len + slen + 1);
  if (!code) return STATUS_FAILED;
  memcpy(code, says_await(src, (size_t)len) ? WRAP_PREFIX : SYNC_PREFIX, plen);
  memcpy(code + plen, src, (size_t)len);
  memcpy(code + plen + len, WRAP_SUFFIX, slen + 1);
  JSValue fn = JS_Eval(ctx, code, plen + len + slen, FILENAME, JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
  free(code);
  buf_reset(&out);
  if (JS_IsException(fn)) {
    JSValue err = JS_GetException(ctx);
    buf_puts(&out, "{");
    put_thrown("COMPILATION_ERROR", err);
    buf_puts(&out, "}");
    JS_FreeValue(ctx, err);
    return out.failed ? STATUS_FAILED : 1;
  }
  size_t size;
  uint8_t *bytes = JS_WriteObject(ctx, &size, fn, JS_WRITE_OBJ_BYTECODE);
  JS_FreeValue(ctx, fn);
  if (!bytes) return STATUS_FAILED;
  buf_put(&out, (const char *)bytes, size);
  js_free(ctx, bytes);
  return out.failed ? STATUS_FAILED : 0;
}

EXPORT("wk_execute") int32_t wk_execute(const uint8_t *code, int32_t code_len, const uint8_t *input, int32_t input_len) {
  JS_UpdateStackTop(rt);
  start_segment();
  context_values cv;
  if (!read_context(input, (size_t)input_len, &cv)) {
    return fail_early("INTERNAL_ERROR", "the execution context is malformed (ABI.md \"Context\")");
  }
  begin_state_view();
  extensions = cv.extensions;
  JSValue script = JS_ReadObject(ctx, code, (size_t)code_len, JS_READ_OBJ_BYTECODE);
  JSValue fn = JS_IsException(script) ? JS_EXCEPTION : JS_EvalFunction(ctx, script);
  if (JS_IsException(fn) || !JS_IsFunction(ctx, fn)) {
    JS_FreeValue(ctx, JS_GetException(ctx));
    JS_FreeValue(ctx, fn);
    JS_FreeValue(ctx, cv.args);
    JS_FreeValue(ctx, cv.scope);
    return fail_early("INVALID_HANDLER", "the handler bytecode does not evaluate to a handler function");
  }
  start_handler(fn, &cv);
  JS_FreeValue(ctx, fn);
  JS_FreeValue(ctx, cv.args);
  JS_FreeValue(ctx, cv.scope);
  return finish_segment();
}

/* Settles one pending call from `{callId, ok, value | error: {message, code}}`. */
static void settle(JSValueConst r) {
  JSValue id_v = get_prop(r, "callId"), ok_v = get_prop(r, "ok");
  uint32_t id = 0;
  JS_ToUint32(ctx, &id, id_v);
  bool ok = JS_ToBool(ctx, ok_v);
  JS_FreeValue(ctx, id_v);
  JS_FreeValue(ctx, ok_v);
  if (id == 0 || id >= next_call_id || JS_IsUndefined(pending_funcs[2 * id])) return;
  JSValue arg;
  if (ok) {
    arg = get_prop(r, "value");
  } else {
    JSValue e = get_prop(r, "error");
    arg = JS_NewError(ctx);
    JSValue msg = get_prop(e, "message"), code = get_prop(e, "code");
    JS_SetPropertyStr(ctx, arg, "message", JS_IsString(msg) ? msg : JS_NewString(ctx, "extension call failed"));
    if (JS_IsString(code)) JS_SetPropertyStr(ctx, arg, "code", code);
    else JS_FreeValue(ctx, code);
    if (!JS_IsString(msg)) JS_FreeValue(ctx, msg);
    JS_FreeValue(ctx, e);
  }
  JSValue fn = pending_funcs[2 * id + (ok ? 0 : 1)];
  JS_FreeValue(ctx, JS_Call(ctx, fn, JS_UNDEFINED, 1, &arg));
  JS_FreeValue(ctx, arg);
  JS_FreeValue(ctx, pending_funcs[2 * id]);
  JS_FreeValue(ctx, pending_funcs[2 * id + 1]);
  pending_funcs[2 * id] = pending_funcs[2 * id + 1] = JS_UNDEFINED;
}

EXPORT("wk_resume") int32_t wk_resume(const char *input, int32_t input_len) {
  JS_UpdateStackTop(rt);
  start_segment();
  JSValue in = JS_ParseJSON(ctx, input, (size_t)input_len, "<results>");
  if (JS_IsException(in) || !JS_IsObject(in)) {
    JS_FreeValue(ctx, JS_GetException(ctx));
    JS_FreeValue(ctx, in);
    return fail_early("INTERNAL_ERROR", "resume input is not a JSON object");
  }
  begin_state_view();
  JSValue results = get_prop(in, "results");
  int64_t n = 0;
  if (JS_IsArray(results)) JS_GetLength(ctx, results, &n);
  for (int64_t i = 0; i < n; i++) {
    JSValue r = JS_GetPropertyUint32(ctx, results, (uint32_t)i);
    settle(r);
    JS_FreeValue(ctx, r);
  }
  JS_FreeValue(ctx, results);
  JS_FreeValue(ctx, in);
  return finish_segment();
}

/* ---------- Wizer initialization ---------- */

static const JSCFunctionListEntry natives[] = {
    JS_CFUNC_DEF("stateGet", 1, js_state_get),
    JS_CFUNC_DEF("stateSet", 2, js_state_set),
    JS_CFUNC_DEF("stateDelete", 1, js_state_delete),
    JS_CFUNC_DEF("stateHas", 1, js_state_has),
    JS_CFUNC_DEF("stateKeys", 0, js_state_keys),
    JS_CFUNC_DEF("emit", 2, js_emit),
    JS_CFUNC_DEF("view", 3, js_view),
    JS_CFUNC_DEF("log", 2, js_log),
    JS_CFUNC_DEF("extCall", 3, js_ext_call),
};

/* Back to the state of a fresh instance: what an execution left is released and counted from zero. */
static void reset_execution(void) {
  JSValue *held[] = {&known, &absent, &keyset, &early, &snapshots, &promise, &settled_value, &extensions, &denied};
  for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
    JS_FreeValue(ctx, *held[i]);
    *held[i] = JS_UNDEFINED;
  }
  for (uint32_t i = 2; i < 2 * next_call_id; i++) {
    JS_FreeValue(ctx, pending_funcs[i]);
    pending_funcs[i] = JS_UNDEFINED;
  }
  settled = JS_PROMISE_NOT_A_PROMISE;
  next_call_id = 1;
  segment_calls = host_calls = mutation_count = event_count = log_count = 0;
  max_host_calls = max_mutations = max_events = max_logs = 1000;
  fatal_code = NULL;
  free((void *)nested_denied);
  nested_denied = NULL;
  caps_clear();
  start_segment();
  buf_reset(&out);
}

/* Runs one representative execution at init so that every table QuickJS grows on first use
 * (atoms, shapes, the job queue, our buffers) is already grown in the snapshot; otherwise each
 * execution would redo that work from the same starting point. Under Wizer the state imports
 * are build.sh's stub (no key is committed). */
static void put_u32(wk_buf *b, uint32_t v) {
  char le[4] = {(char)v, (char)(v >> 8), (char)(v >> 16), (char)(v >> 24)};
  buf_put(b, le, 4);
}

static void put_section(wk_buf *b, const char *text) {
  put_u32(b, (uint32_t)strlen(text));
  buf_put(b, text, strlen(text) + 1);
}

/* Compiles and runs `src` once with every capability (resuming call 1 when it suspends), then
 * resets the instance. */
static void warm_run(const char *src, bool suspends) {
  static const char results[] = "{\"results\":[{\"callId\":1,\"ok\":true,\"value\":{\"status\":200}}]}";
  wk_buf c = {0};
  buf_puts(&c, CONTEXT_MAGIC);
  for (int i = 0; i < 4; i++) put_u32(&c, 1000);
  put_u32(&c, 1); /* seed */
  put_u32(&c, 0);
  put_u32(&c, 1);
  put_section(&c, "*");
  put_section(&c, "{\"http\":[\"get\",\"post\"]}");
  put_section(&c, "{\"by\":1}");
  put_section(&c, "");
  if (c.failed || wk_compile(src, (int32_t)strlen(src)) != 0) abort();
  size_t len = out.len;
  uint8_t *code = malloc(len);
  char *res = wk_alloc(sizeof results - 1);
  if (!code || !res) abort();
  memcpy(code, out.data, len);
  memcpy(res, results, sizeof results - 1);
  int status = wk_execute(code, (int32_t)len, (const uint8_t *)c.data, (int32_t)c.len);
  if (status != (suspends ? STATUS_SUSPENDED : STATUS_DONE)) abort();
  if (suspends && wk_resume(res, sizeof results - 1) != STATUS_DONE) abort();
  free(code);
  free(res);
  free(c.data);
  reset_execution();
}

/* Runs representative executions at init (an async handler that suspends, a plain one) so that
 * every table QuickJS grows on first use (atoms, shapes, the job queue, our buffers) is already
 * grown in the snapshot; otherwise each execution would redo that work from the same starting
 * point. Under Wizer the state imports are build.sh's stub (no key is committed). */
static void warm_up(void) {
  warm_run("$state.n = ($state.n ?? 0) + $args.by; ($state.list = []).push($state.n); $emit('changed', { n: $state.n });"
           "if (!('n' in $state) || Object.keys($state).length !== 2) throw new Error('warm-up: state view');"
           "$view.focus('main'); $log('warm'); const r = await $ext.http.get('u'); return { n: $state.n, r }",
           true);
  warm_run("const n = ($state.count ?? 0) + $args.by; $state.count = n; $emit('changed', { n }); return n", false);
}

/* Fills every free chunk malloc holds below its top chunk, for good: the warm-up and the GC
 * left the snapshot's heap full of small holes, and an execution's allocations landing in them
 * would dirty a page per hole (each dirty page is one more page the host copies back when it
 * resets the instance's memory). With the holes plugged, an execution allocates from the top
 * chunk, a few contiguous pages. Costs the bytes of the holes (tens of KiB), once, in the
 * snapshot. A request larger than any hole comes from the top chunk: its address is where the
 * top starts, and everything served below it came from a hole. */
static void plug_heap_holes(void) {
  enum { PROBE_BYTES = 96 * 1024 };
  char *probe = malloc(PROBE_BYTES);
  if (!probe) return;
  uintptr_t top = (uintptr_t)probe;
  free(probe);
  for (size_t size = 32 * 1024; size >= 1; size /= 2) {
    for (;;) {
      void *p = malloc(size);
      if (!p) return;
      if ((uintptr_t)p >= top) {
        free(p);
        break;
      }
      /* kept: this hole stays allocated in every instance */
    }
  }
}

extern void __wasm_call_ctors(void);

/* Runs once, under Wizer: the snapshot then starts every instance with all of this done. */
EXPORT("wizer-initialize") void wk_initialize(void) {
  __wasm_call_ctors();
  rt = JS_NewRuntime();
  JS_SetMaxStackSize(rt, JS_STACK_BYTES);
  JS_SetInterruptHandler(rt, interrupt_handler, NULL);
  ctx = JS_NewContext(rt);
  JSValue n = JS_NewObject(ctx);
  JS_SetPropertyFunctionList(ctx, n, natives, sizeof natives / sizeof natives[0]);
  JSValue factory = JS_Eval(ctx, WK_PRELUDE, sizeof WK_PRELUDE - 1, "<prelude>", JS_EVAL_TYPE_GLOBAL);
  start_fn = JS_Call(ctx, factory, JS_UNDEFINED, 1, &n);
  JS_FreeValue(ctx, factory);
  JS_FreeValue(ctx, n);
  if (!JS_IsFunction(ctx, start_fn)) abort(); /* a broken prelude must fail the build, not run */
  if (!scratch_fits(SCRATCH_BYTES)) abort();
  warm_up();
  /* The context alone is past QuickJS's initial 256 KiB GC threshold, so without this every
   * execution would start with a full collection of the snapshot's heap (≈100k instructions).
   * Refcounting still frees acyclic garbage at once; cycles wait until 4 MiB more is in use. */
  JS_RunGC(rt);
  JSMemoryUsage usage;
  JS_ComputeMemoryUsage(rt, &usage);
  JS_SetGCThreshold(rt, (size_t)usage.malloc_size + GC_HEADROOM_BYTES);
  plug_heap_holes();
}
