// Drains rings on a background thread (see collector.h); each ring is read by ring_reader.cc.
#include "collector.h"

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
constexpr uint64_t kScanNs = 50'000'000;  // look for new rings every 50 ms
constexpr unsigned kPruneScans = 200;      // forget paths gone from disk every 200 scans (10 s)
constexpr size_t kBatchMax = 65536;       // records moved per ring per pass
}  // namespace

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
    uint32_t* mine = who() == Consumer::Session ? &r->header->session_consumer_pid : &r->header->consumer_pid;
    __atomic_compare_exchange_n(mine, &expected, 0u, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
  }
}

// Opens and maps one ring: its header is read by copy and validated against the file's size before anything is
// mapped, and the geometry kept is that copy's.
std::unique_ptr<Ring> Collector::Open(const std::string& path, std::string& why) {
  int fd = tg_ring_file_open(path.c_str(), O_RDWR);
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
  r->mapped = true;
  Adopt(*r, copy);
  return r;
}

void Collector::Scan() {
  // Paths not ours any more (rejected, or finished and kept for another consumer) stay known, so that a ring this
  // collector has finished is never opened again as a new process while its file waits for the other consumer; they
  // are forgotten once their file is gone.
  if (++scans_ % kPruneScans == 0)
    for (auto it = known_paths_.begin(); it != known_paths_.end();)
      it = !it->second && access(it->first.c_str(), F_OK) != 0 && errno == ENOENT ? known_paths_.erase(it) : std::next(it);
  tg_ring_walk w;
  if (tg_ring_walk_open(&w, opts_.dir.c_str()) != 0) return;
  while (tg_ring_walk_next(&w, 0)) {
    std::string path = w.path;
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
    if (!Claim(*r, who())) continue;  // we look again at the next scan
    known_paths_[path] = true;
    std::lock_guard<std::mutex> lock(mu_);
    r->id = next_id_++;
    opened_.push_back(Snap(*r));
    rings_[r->id] = std::move(r);
  }
  tg_ring_walk_close(&w);
}

void Collector::Report(Ring& r) {
  std::lock_guard<std::mutex> lock(mu_);
  problems_.push_back(r.path + " (pid " + std::to_string(r.pid) + "): " + r.corrupt +
                      "; the ring is quarantined: nothing more is read from it");
  corrupted_.push_back(Snap(r));
}

bool Collector::Drain(Ring& r) {
  Batch batch{r.id, {}};
  std::vector<NameEntry> names;
  bool was_corrupt = !r.corrupt.empty();
  bool filling = tailguard::Drain(r, who(), batch.records, names, NowNs(), kBatchMax);
  if (!was_corrupt && !r.corrupt.empty()) Report(r);
  size_t n = batch.records.size() / TG_RECORD_SIZE;
  if (n || !names.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& e : names) names_.push_back(std::move(e));
    if (n) {
      spooled_ += n;
      batches_.push_back(std::move(batch));
    }
  }
  return filling;
}

Snapshot Collector::Snap(const Ring& r) {
  Snapshot s{r.id, r.path, r.torn, r.lost, r.corrupt, {}};
  memcpy(&s.front, r.header, sizeof s.front);
  // what JavaScript sees of counters is only what passed the checks: a quarantined ring's are not believed
  for (unsigned lane = 0; lane < TG_LANES; lane++) {
    tg_lane& l = s.front.lanes[lane];
    if (!r.corrupt.empty() || !CountersPlausible(l)) {
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
        if (r->corrupt.empty() && tg_guard_lost(r->header)) {
          Quarantine(*r, "the file was truncated under the agent (a read past its end)");
          Report(*r);
        }
    }
    for (auto& [id, r] : rings_) {  // only this thread changes rings_
      bool was_corrupt = !r->corrupt.empty();
      Check(*r, now);
      if (!was_corrupt && !r->corrupt.empty()) Report(*r);
      if (spooled_ < opts_.spool_limit) busy |= Drain(*r);
      if (r->corrupt.empty()) __atomic_store_n(&r->header->consumer_heartbeat, now, __ATOMIC_RELAXED);
      if (Finished(*r)) finished.push_back(id);
    }
    for (uint32_t id : finished) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = rings_.find(id);
      closed_.push_back(Snap(*it->second));
      if (opts_.remove_finished && (!it->second->corrupt.empty() || OthersHaveIt(it->second->header, session_mode(), opts_.dir)) &&
          unlink(it->second->path.c_str()) == 0)
        known_paths_.erase(it->second->path);
      else
        known_paths_[it->second->path] = false;  // its file stays (for another consumer): finished here, not new
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
