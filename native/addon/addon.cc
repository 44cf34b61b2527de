// tailguard's Node addon: maps rings and drains them (collector.cc), and exports the facts defined once in the C
// headers (record layout, entry points, options) so the TypeScript side mirrors them and tests can prove it.
// Errors become JavaScript exceptions that say what was wrong.
#include <cxxabi.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <napi.h>

#include "collector.h"
#include "tailguard/control.h"
#include "tailguard/directory.h"
#include "tailguard/guard.h"
#include "tailguard/policy.h"
#include "tailguard/options.h"
#include "tailguard/record.h"
#include "tailguard/ring_files.h"

using namespace tailguard;

namespace {

Napi::Value BigU64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

std::string Demangle(const std::string& name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || !out) return name;
  std::string s(out);
  free(out);
  return s;
}

std::string Fixed(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

Napi::Object HeaderToJs(Napi::Env env, const tg_ring_front& f) {
  const tg_ring_header& h = f.header;
  auto o = Napi::Object::New(env);
  o.Set("pid", h.pid);
  o.Set("ppid", h.ppid);
  o.Set("startTicks", std::to_string(h.start_ticks));
  o.Set("uid", h.uid);
  o.Set("execGeneration", h.exec_generation);
  o.Set("session", Fixed(h.session, sizeof h.session));
  o.Set("shimVersion", Fixed(h.shim_version, sizeof h.shim_version));
  auto argv = Napi::Array::New(env);
  uint32_t len = h.cmdline_len < TG_CMDLINE_MAX ? h.cmdline_len : TG_CMDLINE_MAX;
  for (uint32_t i = 0, start = 0, n = 0; i <= len; i++) {
    if (i == len || h.cmdline[i] == 0) {
      if (i > start || i < len) argv.Set(n++, std::string(h.cmdline + start, i - start));
      start = i + 1;
    }
  }
  o.Set("cmdline", argv);
  o.Set("anchorRealtime", BigU64(env, h.anchor_realtime));
  o.Set("anchorMonotonic", BigU64(env, h.anchor_monotonic));
  o.Set("laneCapacity", h.lane_capacity);
  o.Set("priority", h.priority);
  o.Set("attachPaths", h.attach_paths);
  o.Set("state", h.state);
  o.Set("exitMonotonic", BigU64(env, h.exit_monotonic));
  if (__atomic_load_n(&h.gpu_known, __ATOMIC_ACQUIRE)) {
    auto g = Napi::Object::New(env);
    g.Set("ordinal", h.gpu_ordinal);
    char uuid[64];
    const uint8_t* u = h.gpu_uuid;
    snprintf(uuid, sizeof uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    g.Set("uuid", std::string(uuid));
    g.Set("name", Fixed(h.gpu_name, sizeof h.gpu_name));
    g.Set("pci", Fixed(h.gpu_pci, sizeof h.gpu_pci));
    o.Set("gpu", g);
  } else {
    o.Set("gpu", env.Null());
  }
  // counters are kept per lane (one per launching thread): their sums describe the process
  uint64_t tail = 0, head = 0, launches = 0, dropped = 0, dropped_launches = 0;
  unsigned lanes = std::min<unsigned>(h.lanes_used, TG_LANES);
  for (unsigned i = 0; i < lanes; i++) {
    const tg_lane& l = f.lanes[i];
    tail += l.tail, head += l.head, launches += l.launches, dropped += l.dropped, dropped_launches += l.dropped_launches;
  }
  auto c = Napi::Object::New(env);
  c.Set("tail", double(tail));
  c.Set("head", double(head));
  c.Set("launches", double(launches));
  c.Set("dropped", double(dropped));
  c.Set("droppedLaunches", double(dropped_launches));
  c.Set("lanes", lanes);
  c.Set("names", h.names_count);
  c.Set("namesDropped", h.names_dropped);
  o.Set("counters", c);
  o.Set("consumerPid", h.consumer_pid);
  return o;
}

Napi::Object SnapshotToJs(Napi::Env env, const Snapshot& s) {
  auto o = HeaderToJs(env, s.front);
  o.Set("id", s.ring);
  o.Set("path", s.path);
  o.Get("counters").As<Napi::Object>().Set("torn", double(s.torn));
  o.Get("counters").As<Napi::Object>().Set("lost", double(s.lost));
  if (!s.corrupt.empty()) o.Set("corrupt", s.corrupt);
  return o;
}

// ---- facts from the C headers ----

Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("layoutVersion", TG_LAYOUT_VERSION);
  o.Set("recordSize", TG_RECORD_SIZE);
  o.Set("headerSize", TG_HEADER_SIZE);
  o.Set("namesSize", TG_NAMES_SIZE);
  o.Set("nameMax", TG_NAME_MAX);
  auto rec = Napi::Object::New(env);
  auto field = [&](Napi::Object& to, const char* name, size_t off, size_t size) {
    auto a = Napi::Array::New(env, 2);
    a.Set(0u, double(off));
    a.Set(1u, double(size));
    to.Set(name, a);
  };
#define RF(name, member) field(rec, name, offsetof(tg_record, member), sizeof(((tg_record*)0)->member))
  RF("seq", seq); RF("kind", kind); RF("op", op); RF("api", api); RF("tid", tid); RF("t_start", t_start);
  RF("dur", dur); RF("flags", flags); RF("result", result); RF("stream", stream);
  RF("launch.kernel", u.launch.kernel); RF("launch.grid", u.launch.grid); RF("launch.block", u.launch.block);
  RF("launch.shared_kib", u.launch.shared_kib); RF("graph.exec", u.graph.exec); RF("copy.bytes", u.copy.bytes);
  RF("copy.element_size", u.copy.element_size); RF("sync.object", u.sync.object); RF("event.event", u.event.event);
  RF("stream_info.priority", u.stream_info.priority); RF("stream_info.flags", u.stream_info.flags);
  RF("process.pid", u.process.pid); RF("process.ppid", u.process.ppid); RF("process.priority", u.process.priority);
  RF("hold.cause_window", u.hold.cause_window); RF("hold.cause_pid", u.hold.cause_pid);
  RF("hold.cause_priority", u.hold.cause_priority); RF("hold.released_by", u.hold.released_by);
  RF("hold.priority", u.hold.priority); RF("window.seq", u.window.seq); RF("window.launches", u.window.launches);
  RF("window.streams", u.window.streams);
  RF("context.trace_id", u.context.trace_id);
  RF("context.span_id", u.context.span_id);
  RF("range.id", u.range.id);
  RF("range.message", u.range.message);
  RF("range.domain", u.range.domain);
  RF("range.depth", u.range.depth);
  RF("range.category", u.range.category);
  RF("gpu_time.seq", u.gpu_time.seq);
  RF("gpu_time.gpu_start", u.gpu_time.gpu_start);
  RF("gpu_time.gpu_end", u.gpu_time.gpu_end);
  RF("kernel_time.launch", u.kernel_time.launch);
  RF("kernel_time.gpu_start", u.kernel_time.gpu_start);
  RF("kernel_time.gpu_end", u.kernel_time.gpu_end);
#undef RF
  o.Set("record", rec);
  auto consts = Napi::Object::New(env);
#define C(name) consts.Set(#name, double(name))
  C(TG_KIND_PROCESS); C(TG_KIND_LAUNCH); C(TG_KIND_COPY); C(TG_KIND_SYNC); C(TG_KIND_WAIT); C(TG_KIND_EVENT);
  C(TG_KIND_STREAM); C(TG_OP_START); C(TG_OP_EXIT); C(TG_OP_EXEC); C(TG_OP_KERNEL); C(TG_OP_GRAPH);
  C(TG_OP_HOST_FUNC); C(TG_OP_HTOD); C(TG_OP_DTOH); C(TG_OP_DTOD); C(TG_OP_HTOH); C(TG_OP_ANY); C(TG_OP_PEER);
  C(TG_OP_MEMSET); C(TG_OP_SYNC_STREAM); C(TG_OP_SYNC_DEVICE); C(TG_OP_SYNC_EVENT); C(TG_OP_CREATE);
  C(TG_OP_DESTROY); C(TG_OP_CAPTURE_BEGIN); C(TG_OP_CAPTURE_END); C(TG_KIND_HOLD); C(TG_KIND_WINDOW);
  C(TG_OP_HOLD_PRIORITY); C(TG_OP_HOLD_BUDGET); C(TG_OP_HOLD_SHARE); C(TG_OP_BEGIN); C(TG_OP_END); C(TG_RELEASE_IDLE);
  C(TG_RELEASE_LAPSED); C(TG_RELEASE_MIN_SHARE); C(TG_RELEASE_DRAINED); C(TG_F_DUR_US); C(TG_F_CAPTURED); C(TG_F_ASYNC);
  C(TG_F_BLOCKING); C(TG_F_PER_THREAD); C(TG_F_UNTIMED); C(TG_F_SAMPLED); C(TG_F_KT_CALL); C(TG_KT_CALL_SLACK_NS);
  C(TG_KIND_CONTEXT); C(TG_KIND_RANGE); C(TG_KIND_GPU_TIME); C(TG_OP_CONTEXT_PROCESS); C(TG_OP_REQUEST_BEGIN);
  C(TG_OP_REQUEST_END); C(TG_OP_RANGE_PUSH); C(TG_OP_RANGE_POP); C(TG_OP_RANGE_START); C(TG_OP_RANGE_END);
  C(TG_OP_RANGE_MARK); C(TG_OP_GPU_WINDOW); C(TG_OP_GPU_MISSING); C(TG_GPU_MISSING_NO_TIMING);
  C(TG_GPU_MISSING_POOL); C(TG_GPU_MISSING_STREAM); C(TG_GPU_MISSING_FORK); C(TG_STATE_RUNNING); C(TG_STATE_EXITED); C(TG_STATE_EXECED);
  C(TG_KIND_KERNEL_TIME); C(TG_OP_KT_KERNEL); C(TG_OP_KT_MEMCPY); C(TG_OP_KT_MEMSET); C(TG_OP_KT_DROPPED); C(TG_OP_KT_STARTED);
  C(TG_PATH_CUDA_SYMBOL); C(TG_PATH_CUDA_GPA); C(TG_PATH_CUDA_DLSYM); C(TG_PATH_HIP_SYMBOL); C(TG_PATH_HIP_DLSYM);
#undef C
  o.Set("constants", consts);
  return o;
}

Napi::Value Apis(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto a = Napi::Array::New(env);
  uint32_t i = 0;
  a.Set(i++, env.Null());  // index 0: no entry point
#define TG_KIND_NONE 0
#define TG_API(sym, family, kind, gpa, per_thread, min_version)        \
  {                                                                    \
    auto o = Napi::Object::New(env);                                   \
    o.Set("name", #sym);                                               \
    o.Set("family", #family);                                          \
    o.Set("kind", double(TG_KIND_##kind));                             \
    o.Set("perThread", bool(per_thread));                              \
    a.Set(i++, o);                                                     \
  }
#include "tailguard/apis.def"
#undef TG_API
  return a;
}

Napi::Value Options(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto a = Napi::Array::New(env);
  uint32_t i = 0;
#define TG_OPTION(id, var, type, def, accepted, reader, meaning) \
  {                                                              \
    auto o = Napi::Object::New(env);                             \
    o.Set("variable", var);                                      \
    o.Set("type", #type);                                        \
    o.Set("default", def);                                       \
    o.Set("accepted", accepted);                                 \
    o.Set("readBy", reader);                                     \
    o.Set("meaning", meaning);                                   \
    const char* old = tg_option_formerly(TG_OPT_##id);           \
    o.Set("formerly", old ? old : "");                           \
    a.Set(i++, o);                                               \
  }
#include "tailguard/options.def"
#undef TG_OPTION
  return a;
}

// The shim's own parser, so `--priority` and TAILGUARD_PRIORITY accept exactly the same values.
Napi::Value ParsePriority(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int p = 0;
  if (!info[0].IsString() || tg_option_priority(info[0].As<Napi::String>().Utf8Value().c_str(), &p) != 0)
    return env.Null();
  return Napi::Number::New(env, p);
}

Napi::Value DemangleJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Demangle(info[0].As<Napi::String>().Utf8Value()));
}

// ---- ring files ----

// What a ring's lanes say that no real ring can: "" when nothing (the collector quarantines a ring for these).
std::string CheckLanes(const tg_ring_front& f) {
  if (f.header.lanes_used > TG_LANES) return "lanes_used " + std::to_string(f.header.lanes_used) + " is past the 16 lanes";
  for (unsigned i = 0; i < TG_LANES; i++)
    if (!CountersPlausible(f.lanes[i])) return "lane " + std::to_string(i) + "'s counters are past any real count";
  return "";
}

// Every ring file in a directory, with its header when it can be read (error says why not). Read by copy, never
// mapped: a ring's owner can shrink it at any moment.
Napi::Value ScanRings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  auto out = Napi::Array::New(env);
  tg_ring_walk w;
  if (tg_ring_walk_open(&w, dir.c_str()) != 0) return out;
  uint32_t n = 0;
  static tg_ring_front front;
  while (tg_ring_walk_next(&w, 0)) {
    std::string path = w.path;
    Napi::Object o;
    int fd = tg_ring_file_open(path.c_str(), O_RDONLY);
    struct stat st;
    std::string error;
    if (fd < 0) error = std::string("cannot open: ") + (errno == EACCES ? "another user's" : strerror(errno));
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) error = "not a regular file";
    else if (pread(fd, &front, sizeof front, 0) != ssize_t(sizeof front)) error = "file is smaller than a ring header";
    else if ((error = CheckHeader(&front.header, size_t(st.st_size))).empty())
      error = CheckLanes(front);
    if (error.empty()) o = HeaderToJs(env, front);
    else if (fd >= 0 && error.rfind("cannot open", 0) != 0 && error != "not a regular file")
      error = "corrupt: " + error;  // readable, and not what a ring can be
    bool alive = tg_ring_alive(fd, w.pid, w.ticks);
    if (fd >= 0) close(fd);
    if (o.IsEmpty()) {
      o = Napi::Object::New(env);
      o.Set("pid", w.pid);
      o.Set("error", error);
    }
    if (fd >= 0) o.Set("ownerUid", double(st.st_uid));
    o.Set("path", path);
    o.Set("alive", alive);
    out.Set(n++, o);
  }
  tg_ring_walk_close(&w);
  return out;
}

// ---- GPU control files (tailguard/control.h) and the policy (tailguard/policy.h) ----

std::string UuidHex(const uint8_t* u) {
  char hex[33];
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", u[i]);
  return hex;
}

Napi::Object DirToJs(Napi::Env env, const tg_dir_info& d) {
  auto o = Napi::Object::New(env);
  o.Set("exists", bool(d.exists));
  o.Set("trusted", bool(d.trusted));
  o.Set("writable", bool(d.writable));
  o.Set("uid", double(d.uid));
  o.Set("gid", double(d.gid));
  o.Set("mode", double(d.mode));
  o.Set("problem", std::string(d.problem));
  return o;
}

// checkDir(dir, create): the directory rule of tailguard/directory.h, as the shim applies it to this process.
Napi::Value CheckDir(const Napi::CallbackInfo& info) {
  tg_dir_info d;
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  if (info.Length() > 1 && info[1].ToBoolean()) tg_dir_prepare(dir.c_str(), &d);
  else tg_dir_inspect(dir.c_str(), &d);
  return DirToJs(info.Env(), d);
}

// policy(dir): the admin's policy as the shims read it, and this process's ceiling under it.
Napi::Value Policy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  tg_dir_info d;
  tg_dir_inspect(dir.c_str(), &d);
  tg_policy p;
  tg_policy_load(dir.c_str(), d.uid, &p);
  auto o = Napi::Object::New(env);
  o.Set("fromFile", bool(p.from_file));
  o.Set("problem", std::string(p.problem));
  o.Set("defaultCeiling", p.default_ceiling);
  o.Set("adminUid", double(p.admin_uid));
  auto rules = Napi::Array::New(env);
  for (uint32_t i = 0; i < p.rules; i++) {
    auto r = Napi::Object::New(env);
    r.Set("kind", p.rule[i].kind == TG_POLICY_UID ? "uid" : "gid");
    r.Set("id", double(p.rule[i].id));
    r.Set("ceiling", p.rule[i].ceiling);
    rules.Set(i, r);
  }
  o.Set("rules", rules);
  uint32_t gid = 0;
  o.Set("myCeiling", tg_policy_ceiling_self(&p, &gid));
  o.Set("myCeilingGid", double(gid));
  return o;
}

// parsePolicy(text): the shim's own parser, for `tailguard doctor` and the tests; {error} or the rules.
Napi::Value ParsePolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string text = info[0].As<Napi::String>().Utf8Value();
  tg_policy p;
  p.admin_uid = 0;
  char err[300];
  auto o = Napi::Object::New(env);
  if (tg_policy_parse(text.data(), text.size(), &p, err, sizeof err) != 0) o.Set("error", std::string(err));
  o.Set("defaultCeiling", p.default_ceiling);
  o.Set("rules", double(p.rules));
  return o;
}

// A control file opened and copied: no mapping, so a file shrunk under us is a short read, not a SIGBUS.
struct ControlFile {
  std::string path, name, error;
  int fd = -1;
  uint32_t uid = 0, gid = 0;
  uint32_t named_uid = 0;
  tg_ctl copy;
  ~ControlFile() {
    if (fd >= 0) close(fd);
  }
};

// Each control file of a directory, opened for reading (writable: for writing too, where this user may).
template <typename F>
void ForEachControlFile(const std::string& dir, bool writable, F fn) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    ControlFile c;
    c.name = e->d_name;
    uint8_t uuid[16];
    unsigned alt;
    if (tg_ctl_name_parse(e->d_name, uuid, &c.named_uid, &alt) != 0) continue;
    c.path = dir + "/" + c.name;
    c.fd = open(c.path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (c.fd < 0 && writable && errno == EACCES) c.fd = open(c.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (c.fd < 0) c.error = std::string("cannot open: ") + (errno == ELOOP ? "a symbolic link" : strerror(errno));
    else if (fstat(c.fd, &st) != 0 || !S_ISREG(st.st_mode)) c.error = "not a regular file";
    else if (st.st_uid != c.named_uid)
      c.error = "made by uid " + std::to_string(st.st_uid) + " under uid " + std::to_string(c.named_uid) +
                "'s name: ignored by every shim";
    else if (size_t(st.st_size) != sizeof(tg_ctl) || pread(c.fd, &c.copy, sizeof c.copy, 0) != ssize_t(sizeof c.copy))
      c.error = "not the size of a control block";
    else if (!tg_ctl_header_ok(&c.copy, nullptr))
      c.error = "corrupt, or from another tailguard version";
    if (c.fd >= 0 && fstat(c.fd, &st) == 0) {
      c.uid = uint32_t(st.st_uid);
      c.gid = uint32_t(st.st_gid);
    }
    fn(c);
  }
  closedir(d);
}

// Every control file: its GPU, owner, the owner's ceiling, and the slots of live processes (pid, priority asked for
// and in force, mechanisms, timeslice, holds).
Napi::Value ControlBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  auto out = Napi::Array::New(env);
  uint32_t n = 0;
  uint32_t my_ns = tg_pid_namespace();
  tg_dir_info d;
  tg_dir_inspect(dir.c_str(), &d);
  tg_policy policy;
  tg_policy_load(dir.c_str(), d.uid, &policy);
  ForEachControlFile(dir, false, [&](ControlFile& c) {
    auto o = Napi::Object::New(env);
    o.Set("path", c.path);
    o.Set("ownerUid", double(c.uid));
    if (!c.error.empty()) {
      o.Set("error", c.error);
    } else {
      const tg_ctl* b = &c.copy;
      int32_t ceiling = tg_policy_ceiling(&policy, c.uid, c.gid);
      o.Set("gpu", UuidHex(b->gpu_uuid));
      o.Set("ownerGid", double(c.gid));
      o.Set("ceiling", ceiling);
      auto slots = Napi::Array::New(env);
      uint32_t k = 0;
      for (uint32_t i = 0; i < TG_CTL_SLOTS; i++) {
        const tg_ctl_slot& s = b->slot[i];
        if (!tg_ctl_slot_alive(b, c.fd, i, my_ns)) continue;
        auto so = Napi::Object::New(env);
        so.Set("slot", i);
        so.Set("pid", s.pid);
        so.Set("pidNamespace", s.pid_ns);
        so.Set("otherNamespace", s.pid_ns != my_ns);
        so.Set("requested", s.priority);
        so.Set("priority", tg_priority_in_force(s.priority, ceiling));
        so.Set("mechanisms", s.mechanisms);
        so.Set("timesliceUs", s.timeslice_us);
        so.Set("heldNs", double(s.held_ns));
        so.Set("holds", double(s.holds));
        so.Set("busy", bool(s.busy));
        slots.Set(k++, so);
      }
      o.Set("slots", slots);
    }
    out.Set(n++, o);
  });
  return out;
}

// Sets a live process's priority: in its slot of every GPU control file (the scheduler reads it there) and in its
// ring header (what it takes when it attaches to a GPU later, and what `ps` shows), with plain writes of the field
// (no mapping: the file could shrink under one). The kernel decides who may: the process's user and root. Returns
// {slots, rings, denied, ceiling} (ceiling: the lowest one in force for it, or null when it has no slot).
Napi::Value SetPriority(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  uint32_t pid = info[1].As<Napi::Number>().Uint32Value();
  int32_t priority = info[2].As<Napi::Number>().Int32Value();
  uint32_t slots = 0, rings = 0, denied = 0;
  int32_t ceiling = INT32_MAX;
  uint32_t my_ns = tg_pid_namespace();
  tg_dir_info d;
  tg_dir_inspect(dir.c_str(), &d);
  tg_policy policy;
  tg_policy_load(dir.c_str(), d.uid, &policy);
  ForEachControlFile(dir, true, [&](ControlFile& c) {
    if (!c.error.empty()) return;
    // a pid names a process of this namespace: the same number in another namespace is another process
    for (uint32_t i = 0; i < TG_CTL_SLOTS; i++) {
      if (c.copy.slot[i].pid != pid || c.copy.slot[i].pid_ns != my_ns || !tg_ctl_slot_alive(&c.copy, c.fd, i, my_ns))
        continue;
      off_t at = off_t(offsetof(tg_ctl, slot) + i * sizeof(tg_ctl_slot) + offsetof(tg_ctl_slot, priority));
      if (pwrite(c.fd, &priority, sizeof priority, at) == ssize_t(sizeof priority)) {
        slots++;
        ceiling = std::min(ceiling, tg_policy_ceiling(&policy, c.uid, c.gid));
      } else
        denied++;
    }
  });
  tg_ring_walk w;
  static tg_ring_front front;
  tg_ring_walk_open(&w, dir.c_str());  // a directory that cannot be read has no rings to set
  while (tg_ring_walk_next(&w, 0)) {
    if (w.pid != pid || !tg_process_alive(pid, w.ticks)) continue;
    int fd = tg_ring_file_open(w.path, O_RDWR);
    if (fd < 0) {
      if (errno == EACCES || errno == EPERM) denied++;
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && pread(fd, &front, sizeof front, 0) == ssize_t(sizeof front) &&
        CheckHeader(&front.header, size_t(st.st_size)).empty()) {
      int32_t in_force = ceiling == INT32_MAX ? tg_priority_in_force(priority, tg_policy_ceiling(&policy, uint32_t(st.st_uid), uint32_t(st.st_gid)))
                                              : tg_priority_in_force(priority, ceiling);
      if (pwrite(fd, &in_force, sizeof in_force, offsetof(tg_ring_header, priority)) == ssize_t(sizeof in_force)) rings++;
    }
    close(fd);
  }
  tg_ring_walk_close(&w);
  auto o = Napi::Object::New(env);
  o.Set("slots", slots);
  o.Set("rings", rings);
  o.Set("denied", denied);
  o.Set("ceiling", ceiling == INT32_MAX ? env.Null() : Napi::Number::New(env, ceiling));
  return o;
}

Napi::Value Sweep(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), tg_sweep_stale_rings(info[0].As<Napi::String>().Utf8Value().c_str()));
}

// ---- Collector ----

class CollectorWrap : public Napi::ObjectWrap<CollectorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Collector",
                       {InstanceMethod("take", &CollectorWrap::Take), InstanceMethod("status", &CollectorWrap::Status),
                        InstanceMethod("problems", &CollectorWrap::Problems),
                        InstanceMethod("close", &CollectorWrap::Close)});
  }

  explicit CollectorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CollectorWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "Collector(dir, options): dir must be a string");
    CollectorOptions opts;
    opts.dir = info[0].As<Napi::String>().Utf8Value();
    if (info.Length() > 1 && info[1].IsObject()) {
      auto o = info[1].As<Napi::Object>();
      if (o.Has("session") && o.Get("session").IsString()) opts.session = o.Get("session").As<Napi::String>();
      if (o.Has("pollUs") && o.Get("pollUs").IsNumber()) opts.poll_us = o.Get("pollUs").As<Napi::Number>().Uint32Value();
      if (o.Has("spoolLimit") && o.Get("spoolLimit").IsNumber())
        opts.spool_limit = uint64_t(o.Get("spoolLimit").As<Napi::Number>().DoubleValue());
      if (o.Has("removeFinished") && o.Get("removeFinished").IsBoolean())
        opts.remove_finished = o.Get("removeFinished").As<Napi::Boolean>();
    }
    if (opts.session.size() >= sizeof(tg_ring_header::session))
      throw Napi::RangeError::New(env, "Collector: session id longer than 31 characters");
    collector_ = std::make_unique<Collector>(opts);
  }

 private:
  Collector& Get(Napi::Env env) {
    if (!collector_) throw Napi::Error::New(env, "Collector is closed");
    return *collector_;
  }

  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t max = info.Length() > 0 && info[0].IsNumber() ? size_t(info[0].As<Napi::Number>().DoubleValue()) : 1 << 20;
    Harvest h = Get(env).Take(max);
    auto o = Napi::Object::New(env);
    auto opened = Napi::Array::New(env, h.opened.size());
    for (size_t i = 0; i < h.opened.size(); i++) opened.Set(uint32_t(i), SnapshotToJs(env, h.opened[i]));
    o.Set("opened", opened);
    auto names = Napi::Array::New(env, h.names.size());
    for (size_t i = 0; i < h.names.size(); i++) {
      auto n = Napi::Object::New(env);
      n.Set("ring", h.names[i].ring);
      n.Set("id", h.names[i].id);
      n.Set("name", h.names[i].name);
      n.Set("demangled", Demangle(h.names[i].name));
      n.Set("truncated", h.names[i].truncated);
      names.Set(uint32_t(i), n);
    }
    o.Set("names", names);
    auto batches = Napi::Array::New(env, h.batches.size());
    for (size_t i = 0; i < h.batches.size(); i++) {
      auto b = Napi::Object::New(env);
      b.Set("ring", h.batches[i].ring);
      // copied into memory V8 owns: an external buffer is freed by a finalizer that runs only when the event loop
      // turns, so a JavaScript thread busy catching up would pile up the native copies (hundreds of MB measured)
      const auto& records = h.batches[i].records;
      b.Set("data", Napi::Buffer<uint8_t>::Copy(env, records.data(), records.size()));
      batches.Set(uint32_t(i), b);
    }
    o.Set("batches", batches);
    auto corrupted = Napi::Array::New(env, h.corrupted.size());
    for (size_t i = 0; i < h.corrupted.size(); i++) corrupted.Set(uint32_t(i), SnapshotToJs(env, h.corrupted[i]));
    o.Set("corrupted", corrupted);
    auto closed = Napi::Array::New(env, h.closed.size());
    for (size_t i = 0; i < h.closed.size(); i++) closed.Set(uint32_t(i), SnapshotToJs(env, h.closed[i]));
    o.Set("closed", closed);
    o.Set("records", double(h.records));
    return o;
  }

  Napi::Value Status(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto snaps = Get(env).Status();
    auto a = Napi::Array::New(env, snaps.size());
    for (size_t i = 0; i < snaps.size(); i++) a.Set(uint32_t(i), SnapshotToJs(env, snaps[i]));
    return a;
  }

  Napi::Value Problems(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto list = Get(env).Problems();
    auto a = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) a.Set(uint32_t(i), list[i]);
    return a;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (collector_) collector_->Stop();
    collector_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<Collector> collector_;
};

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", TG_VERSION);
  exports.Set("layout", Napi::Function::New(env, Layout));
  exports.Set("apis", Napi::Function::New(env, Apis));
  exports.Set("options", Napi::Function::New(env, Options));
  exports.Set("demangle", Napi::Function::New(env, DemangleJs));
  exports.Set("parsePriority", Napi::Function::New(env, ParsePriority));
  exports.Set("scanRings", Napi::Function::New(env, ScanRings));
  exports.Set("sweep", Napi::Function::New(env, Sweep));
  exports.Set("controlBlocks", Napi::Function::New(env, ControlBlocks));
  exports.Set("checkDir", Napi::Function::New(env, CheckDir));
  exports.Set("policy", Napi::Function::New(env, Policy));
  exports.Set("parsePolicy", Napi::Function::New(env, ParsePolicy));
  exports.Set("guardAbsorbed", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), tg_guard_absorbed());
  }));
  auto mech = Napi::Object::New(env);
  mech.Set("HOLDS", int(TG_MECH_HOLDS));
  mech.Set("BUDGET", int(TG_MECH_BUDGET));
  mech.Set("TIMESLICE", int(TG_MECH_TIMESLICE));
  mech.Set("MIN_SHARE", int(TG_MECH_MIN_SHARE));
  exports.Set("mechanisms", mech);
  auto prio = Napi::Object::New(env);
  prio.Set("HIGH", int(TG_PRIORITY_HIGH));
  prio.Set("NORMAL", int(TG_PRIORITY_NORMAL));
  prio.Set("LOW", int(TG_PRIORITY_LOW));
  prio.Set("MIN", int(TG_PRIORITY_MIN));
  prio.Set("MAX", int(TG_PRIORITY_MAX));
  exports.Set("priorities", prio);
  exports.Set("setPriority", Napi::Function::New(env, SetPriority));
  exports.Set("Collector", CollectorWrap::Define(env));
  return exports;
}

NODE_API_MODULE(tailguard, Init)
