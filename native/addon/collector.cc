// Drains rings on a background thread (see collector.h). The consumer side of the queue protocol in
// tailguard/record.h: read a slot once its sequence says published, advance our own position, publish it.
#include "collector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "tailguard/guard.h"
#include "tailguard/ring_files.h"

namespace tailguard {

namespace {
constexpr uint64_t kScanNs = 50'000'000;          // look for new rings every 50 ms
constexpr uint64_t kAliveCheckNs = 100'000'000;   // check each ring's process and header every 100 ms
constexpr uint64_t kTornGraceNs = 200'000'000;    // a dead process's half-written slot is skipped after this
constexpr uint64_t kStallNs = 2'000'000'000;      // a live one's after this (its thread stopped, or the slot is junk)
constexpr size_t kBatchMax = 65536;               // records moved per ring per pass
constexpr uint64_t kCounterMax = 1ull << 48;      // no lane counts this many records in a process's life
constexpr uint32_t kCapacityMax = 1u << 24;       // TAILGUARD_RING_RECORDS' maximum
}  // namespace

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

Ring::~Ring() {
  if (header) {
    tg_guard_remove(header);
    munmap(header, size);
  }
  if (fd >= 0) close(fd);
}

std::string CheckHeader(const tg_ring_header* h, size_t file_size) {
  if (file_size < TG_NAMES_OFFSET) return "file is smaller than a ring header";
  if (memcmp(h->magic, TG_RING_MAGIC, 8) != 0) return "not a tailguard ring (bad magic)";
  if (h->layout_version != TG_LAYOUT_VERSION)
    return "ring layout version " + std::to_string(h->layout_version) + " is not the supported " +
           std::to_string(TG_LAYOUT_VERSION) + " (shim and agent versions differ)";
  if (h->header_size != TG_HEADER_SIZE || h->record_size != TG_RECORD_SIZE || h->lane_count != TG_LANES)
    return "header, record or lane sizes differ";
  uint32_t cap = h->lane_capacity;
  if (cap < 2 || cap > kCapacityMax || (cap & (cap - 1)) != 0)
    return "lane capacity " + std::to_string(cap) + " is not a power of two up to 2^24";
  if (h->names_offset != TG_NAMES_OFFSET || h->names_size != TG_NAMES_SIZE ||
      h->records_offset != uint64_t(TG_NAMES_OFFSET) + TG_NAMES_SIZE ||
      h->file_size != tg_ring_file_size(cap) || h->file_size != file_size)
    return "region offsets do not match the file";
  if (h->cmdline_len > TG_CMDLINE_MAX || h->checksum != tg_header_checksum(h)) return "header checksum mismatch";
  return "";
}

Collector::Collector(CollectorOptions opts) : opts_(std::move(opts)) {
  thread_ = std::thread([this] { Run(); });
}

Collector::~Collector() { Stop(); }

void Collector::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t self = uint32_t(getpid());
  for (auto& [id, r] : rings_) {  // let another consumer (a restarted agent) take over where we stopped
    uint32_t expected = self;
    uint32_t* mine = session_mode() ? &r->header->session_consumer_pid : &r->header->consumer_pid;
    __atomic_compare_exchange_n(mine, &expected, 0u, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
  }
}

// Opens and maps one ring: its header is read by copy and validated against the file's size before anything is
// mapped, and the geometry kept is that copy's.
std::unique_ptr<Ring> Collector::Open(const std::string& path, std::string& why) {
  int fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) why = std::string("cannot open: ") + (errno == ELOOP ? "a symbolic link" : strerror(errno));
    return nullptr;
  }
  auto r = std::make_unique<Ring>();
  r->fd = fd;
  r->path = path;
  struct stat st;
  static thread_local tg_ring_header copy;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
    return nullptr;
  }
  if (pread(fd, &copy, sizeof copy, 0) != ssize_t(sizeof copy)) {
    why = "file is smaller than a ring header";
    return nullptr;
  }
  why = CheckHeader(&copy, size_t(st.st_size));
  if (!why.empty()) return nullptr;
  void* p = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    why = std::string("cannot map: ") + strerror(errno);
    return nullptr;
  }
  if (tg_guard_add(p, size_t(st.st_size)) != 0) {
    munmap(p, size_t(st.st_size));
    why = "more rings than the agent can guard at once (4096)";
    return nullptr;
  }
  r->header = static_cast<tg_ring_header*>(p);
  r->size = size_t(st.st_size);
  r->geo.lane_capacity = copy.lane_capacity;
  r->geo.names_offset = copy.names_offset;
  r->geo.names_size = copy.names_size;
  r->geo.records_offset = copy.records_offset;
  r->geo.file_size = copy.file_size;
  r->pid = copy.pid;
  r->start_ticks = copy.start_ticks;
  r->checksum = copy.checksum;
  r->has_session = copy.session[0] != 0;
  return r;
}

// Becomes the ring's consumer of our kind (agent, or the session's recorder): one of each at a time. Our positions
// start where the ring says the last of our kind stopped, or at the oldest record still there.
bool Collector::Claim(Ring& r) {
  tg_ring_header* h = r.header;
  uint32_t self = uint32_t(getpid());
  uint32_t* owner = session_mode() ? &h->session_consumer_pid : &h->consumer_pid;
  uint32_t cur = __atomic_load_n(owner, __ATOMIC_ACQUIRE);
  if (cur != 0 && cur != self && tg_process_alive(cur, 0)) return false;  // a live other consumer keeps it
  for (unsigned lane = 0; lane < TG_LANES; lane++) {
    tg_lane* l = &tg_lanes(h)[lane];
    uint64_t* at = session_mode() ? &l->session_head : &l->head;
    uint64_t pos = __atomic_load_n(at, __ATOMIC_ACQUIRE), tail = __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE);
    uint64_t cap = r.geo.capacity(lane);
    if (pos > tail || tail - pos > cap) pos = tail > cap ? tail - cap : 0;  // only the last lap is still there
    r.pos[lane] = pos;
    r.last_tail[lane] = tail;
    r.last_dropped[lane] = __atomic_load_n(&l->dropped, __ATOMIC_RELAXED);
    // published before we count as a consumer, so the producer never honours a stale position of ours
    __atomic_store_n(at, pos, __ATOMIC_RELEASE);
  }
  return __atomic_compare_exchange_n(owner, &cur, self, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

void Collector::Scan() {
  DIR* d = opendir(opts_.dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    uint32_t pid, gen;
    uint64_t ticks;
    int tmp;
    if (tg_ring_name_parse(e->d_name, &pid, &ticks, &gen, &tmp) != 0 || tmp) continue;
    std::string path = opts_.dir + "/" + e->d_name;
    if (known_paths_.count(path)) continue;
    std::string why;
    auto r = Open(path, why);
    if (!r) {
      if (why.empty()) continue;  // gone meanwhile
      std::lock_guard<std::mutex> lock(mu_);
      problems_.push_back(path + ": " + why + "; skipped");
      known_paths_[path] = false;
      continue;
    }
    if (session_mode() && strncmp(r->header->session, opts_.session.c_str(), sizeof r->header->session) != 0) {
      known_paths_[path] = false;  // another session's ring: never ours
      continue;
    }
    if (!Claim(*r)) continue;  // we look again at the next scan
    known_paths_[path] = true;
    std::lock_guard<std::mutex> lock(mu_);
    r->id = next_id_++;
    opened_.push_back(Snap(*r));
    rings_[r->id] = std::move(r);
  }
  closedir(d);
}

void Collector::Quarantine(Ring& r, const std::string& why) {
  if (!r.corrupt.empty()) return;
  // what a shrunk file looks like (zeros, once its writer re-extends it) is best told by its size
  struct stat st;
  if (fstat(r.fd, &st) == 0 && size_t(st.st_size) != r.size)
    r.corrupt = "the file was truncated under the agent (" + std::to_string(st.st_size) + " bytes, not " +
                std::to_string(r.size) + ")";
  else
    r.corrupt = why;
  std::lock_guard<std::mutex> lock(mu_);
  problems_.push_back(r.path + " (pid " + std::to_string(r.pid) + "): " + r.corrupt +
                      "; the ring is quarantined: nothing more is read from it");
  corrupted_.push_back(Snap(r));
}

size_t Collector::DrainLane(Ring& r, unsigned lane, Batch& batch, bool& filling, uint64_t now) {
  tg_lane* l = &tg_lanes(r.header)[lane];
  const uint64_t cap = r.geo.capacity(lane), mask = cap - 1;
  const tg_record* slots = reinterpret_cast<const tg_record*>(reinterpret_cast<const char*>(r.header) +
                                                              r.geo.lane_offset(lane));
  uint64_t pos = r.pos[lane];
  const uint64_t tail = __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE);
  const uint64_t dropped = __atomic_load_n(&l->dropped, __ATOMIC_RELAXED);
  if (tail < r.last_tail[lane] || dropped < r.last_dropped[lane] || tail > kCounterMax || dropped > kCounterMax) {
    Quarantine(r, "lane " + std::to_string(lane) + "'s counters went backwards or past any real count (tail " +
                      std::to_string(tail) + ", dropped " + std::to_string(dropped) + ")");
    return 0;
  }
  r.last_tail[lane] = tail;
  r.last_dropped[lane] = dropped;
  if (tail - pos > cap) {  // the producer lapped us (it did not yet honour our position): those records are gone
    r.lost += tail - cap - pos;
    pos = tail - cap;
  }
  if (tail - pos > cap / 8) filling = true;
  size_t n = 0;
  uint64_t* published = session_mode() ? &l->session_head : &l->head;
  while (pos < tail && batch.records.size() / TG_RECORD_SIZE < kBatchMax) {
    // the run of published records from pos (up to the end of the lane), copied at once
    uint64_t run = 0, limit = std::min<uint64_t>(tail - pos, cap - (pos & mask));
    while (run < limit &&
           __atomic_load_n(&slots[(pos + run) & mask].seq, __ATOMIC_ACQUIRE) == tg_seq_published(pos + run))
      run++;
    if (run) {
      const uint8_t* src = reinterpret_cast<const uint8_t*>(&slots[pos & mask]);
      batch.records.insert(batch.records.end(), src, src + run * TG_RECORD_SIZE);
      n += run;
      pos += run;
      r.stall_since[lane] = 0;
      __atomic_store_n(published, pos, __ATOMIC_RELEASE);  // hand the space back to producers as we go
      continue;
    }
    uint64_t seq = __atomic_load_n(&slots[pos & mask].seq, __ATOMIC_ACQUIRE);
    if (seq > tg_seq_published(pos) && (seq - tg_seq_published(pos)) % cap == 0 && seq <= tail) {
      r.lost++;  // reused by a later lap before we read it
      __atomic_store_n(published, ++pos, __ATOMIC_RELEASE);
      continue;
    }
    // Claimed but not yet published. A live producer finishes within a call; a dead one never will; a slot that
    // stays this way while its producer lives was stopped mid-call or is junk.
    if (!r.stall_since[lane]) r.stall_since[lane] = now;
    if (now - r.stall_since[lane] < (r.alive ? kStallNs : kTornGraceNs)) break;
    r.torn++;
    r.stall_since[lane] = 0;
    __atomic_store_n(published, ++pos, __ATOMIC_RELEASE);
  }
  r.pos[lane] = pos;
  return n;
}

bool Collector::Drain(Ring& r) {
  if (!r.corrupt.empty()) return false;
  Batch batch{r.id, {}};
  bool filling = false;
  unsigned lanes = std::min<unsigned>(__atomic_load_n(&r.header->lanes_used, __ATOMIC_ACQUIRE), TG_LANES);
  size_t n = 0;
  uint64_t now = NowNs();
  for (unsigned lane = 0; lane < lanes && r.corrupt.empty(); lane++) n += DrainLane(r, lane, batch, filling, now);
  if (r.corrupt.empty()) ReadNames(r);  // after the records: every name they refer to was published before them
  if (n) {
    std::lock_guard<std::mutex> lock(mu_);
    spooled_ += n;
    batches_.push_back(std::move(batch));
  }
  return filling;
}

void Collector::ReadNames(Ring& r) {
  tg_ring_header* h = r.header;
  uint32_t used = __atomic_load_n(&h->names_used, __ATOMIC_ACQUIRE);
  if (used > r.geo.names_size || used < r.names_read) {
    Quarantine(r, "its name table says " + std::to_string(used) + " bytes are used, which cannot be");
    return;
  }
  const char* base = reinterpret_cast<const char*>(h) + r.geo.names_offset;
  std::vector<NameEntry> found;
  while (r.names_read + sizeof(tg_name_entry) <= used) {
    tg_name_entry e;
    memcpy(&e, base + r.names_read, sizeof e);  // a copy: the length read is the length used
    uint32_t step = uint32_t((sizeof(tg_name_entry) + e.len + 3) & ~3u);
    if (e.len > TG_NAME_MAX || r.names_read + step > used) {
      Quarantine(r, "a kernel name entry at byte " + std::to_string(r.names_read) + " of its name table is malformed");
      return;
    }
    found.push_back({r.id, e.id, std::string(base + r.names_read + sizeof(tg_name_entry), e.len), (e.flags & 1) != 0});
    r.names_read += step;
  }
  if (!found.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& f : found) names_.push_back(std::move(f));
  }
}

void Collector::Check(Ring& r, uint64_t now) {
  if (now - r.checked_alive < kAliveCheckNs) return;
  r.checked_alive = now;
  tg_ring_header* h = r.header;
  // the writer's lock says it whatever the writer's PID namespace; /proc for a ring without one
  r.alive = tg_ring_alive(r.fd, r.pid, r.start_ticks) && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != TG_STATE_EXECED;
  if (!r.corrupt.empty()) return;
  static thread_local tg_ring_header copy;
  memcpy(&copy, h, sizeof copy);
  if (copy.checksum != r.checksum || CheckHeader(&copy, r.size) != "")
    Quarantine(r, "its header changed after it was validated (" +
                      (CheckHeader(&copy, r.size).empty() ? std::string("another process") : CheckHeader(&copy, r.size)) +
                      ")");
}

bool Collector::Finished(Ring& r) {
  if (r.alive) return false;
  if (!r.corrupt.empty()) return true;
  tg_ring_header* h = r.header;
  for (unsigned lane = 0; lane < TG_LANES; lane++)
    if (r.pos[lane] != __atomic_load_n(&tg_lanes(h)[lane].tail, __ATOMIC_ACQUIRE)) return false;
  return true;
}

Snapshot Collector::Snap(const Ring& r) {
  Snapshot s{r.id, r.path, r.torn, r.lost, r.corrupt, {}};
  memcpy(&s.front, r.header, sizeof s.front);
  // what JavaScript sees of counters is only what passed the checks: a quarantined ring's are not believed
  for (unsigned lane = 0; lane < TG_LANES; lane++) {
    tg_lane& l = s.front.lanes[lane];
    if (!r.corrupt.empty() || l.tail > kCounterMax || l.dropped > kCounterMax || l.launches > kCounterMax ||
        l.dropped_launches > kCounterMax) {
      l.tail = r.last_tail[lane];
      l.dropped = r.last_dropped[lane];
      l.launches = l.dropped_launches = 0;
    }
    l.head = r.pos[lane];
  }
  s.front.header.lanes_used = std::min<uint32_t>(s.front.header.lanes_used, TG_LANES);
  return s;
}

// May a finished ring be removed? Only once every consumer it has has mapped it (unlinking a mapped file takes
// nothing from its mappers) or is gone: the recorder leaves it for a running agent, the agent for a live recorder.
static bool OthersHaveIt(const tg_ring_header* h, bool session_mode, const std::string& dir) {
  if (session_mode) {
    uint32_t agent = __atomic_load_n(&h->consumer_pid, __ATOMIC_ACQUIRE);
    return (agent && tg_process_alive(agent, 0)) || !tg_agent_alive(dir.c_str());
  }
  if (!h->session[0]) return true;
  char session[sizeof h->session + 1];
  memcpy(session, h->session, sizeof h->session);
  session[sizeof h->session] = 0;
  return __atomic_load_n(&h->session_consumer_pid, __ATOMIC_ACQUIRE) != 0 || !tg_session_alive(session);
}

void Collector::Run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    uint64_t now = NowNs();
    if (now - last_scan_ >= kScanNs) {
      last_scan_ = now;
      Scan();
    }
    bool busy = false;  // a ring was filling up: pass again at once instead of sleeping
    std::vector<uint32_t> finished;
    unsigned absorbed = tg_guard_absorbed();
    if (absorbed != absorbed_) {  // a file shrank under one of our mappings: say so before reading its zeros
      absorbed_ = absorbed;
      for (auto& [id, r] : rings_)
        if (tg_guard_lost(r->header)) Quarantine(*r, "the file was truncated under the agent (a read past its end)");
    }
    for (auto& [id, r] : rings_) {  // only this thread changes rings_
      Check(*r, now);
      if (spooled_ < opts_.spool_limit) busy |= Drain(*r);
      if (r->corrupt.empty()) __atomic_store_n(&r->header->consumer_heartbeat, now, __ATOMIC_RELAXED);
      if (Finished(*r)) finished.push_back(id);
    }
    for (uint32_t id : finished) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = rings_.find(id);
      closed_.push_back(Snap(*it->second));
      if (opts_.remove_finished && (!it->second->corrupt.empty() || OthersHaveIt(it->second->header, session_mode(), opts_.dir)))
        unlink(it->second->path.c_str());
      known_paths_.erase(it->second->path);
      rings_.erase(it);  // unmaps
    }
    if (!busy) usleep(opts_.poll_us);
  }
}

Harvest Collector::Take(size_t max_records) {
  Harvest h;
  std::lock_guard<std::mutex> lock(mu_);
  h.opened.swap(opened_);
  h.names.swap(names_);
  while (!batches_.empty() && h.records < max_records) {
    h.records += batches_.front().records.size() / TG_RECORD_SIZE;
    h.batches.push_back(std::move(batches_.front()));
    batches_.pop_front();
  }
  spooled_ -= h.records;
  if (batches_.empty()) {  // a ring is quarantined or closes only after its last good records were taken
    h.corrupted.swap(corrupted_);
    h.closed.swap(closed_);
  }
  return h;
}

std::vector<Snapshot> Collector::Status() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Snapshot> out;
  for (auto& [id, r] : rings_) out.push_back(Snap(*r));
  return out;
}

std::vector<std::string> Collector::Problems() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.swap(problems_);
  return out;
}

}  // namespace tailguard
