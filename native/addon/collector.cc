// Drains rings on a background thread (see collector.h). The consumer side of the queue protocol in
// tailguard/record.h: read a slot once its sequence says published, free it for the next lap, advance head.
#include "collector.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "tailguard/ring_files.h"

namespace tailguard {

namespace {
constexpr uint64_t kScanNs = 50'000'000;        // look for new rings every 50 ms
constexpr uint64_t kAliveCheckNs = 100'000'000; // check each ring's process every 100 ms
constexpr uint64_t kTornGraceNs = 200'000'000;  // a dead process's half-written slot is skipped after this
constexpr size_t kBatchMax = 65536;             // records moved per ring per pass
}  // namespace

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

Ring::~Ring() {
  if (header) munmap(header, size);
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
  if (cap < 2 || (cap & (cap - 1)) != 0) return "lane capacity is not a power of two";
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
    __atomic_compare_exchange_n(&r->header->consumer_pid, &expected, 0u, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
  }
}

void Collector::Scan() {
  DIR* d = opendir(opts_.dir.c_str());
  if (!d) return;
  uint32_t self = uint32_t(getpid());
  while (dirent* e = readdir(d)) {
    uint32_t pid, gen;
    uint64_t ticks;
    int tmp;
    if (tg_ring_name_parse(e->d_name, &pid, &ticks, &gen, &tmp) != 0 || tmp) continue;
    std::string path = opts_.dir + "/" + e->d_name;
    if (known_paths_.count(path)) continue;
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    void* p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && size_t(st.st_size) >= TG_NAMES_OFFSET)
      p = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      problems_.push_back(path + ": cannot map (file too small or unreadable)");
      known_paths_[path] = false;
      continue;
    }
    auto r = std::make_unique<Ring>();
    r->path = path;
    r->header = static_cast<tg_ring_header*>(p);
    r->size = size_t(st.st_size);
    r->fd = fd;
    std::string why = CheckHeader(r->header, r->size);
    if (!why.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      problems_.push_back(path + ": " + why + "; skipped");
      known_paths_[path] = false;
      continue;  // unmapped by ~Ring
    }
    if (!opts_.session.empty() && strncmp(r->header->session, opts_.session.c_str(), sizeof r->header->session) != 0) {
      known_paths_[path] = false;  // another session's ring: never ours
      continue;
    }
    // Claim the ring: one consumer at a time. A live other consumer keeps it; we look again at the next scan.
    uint32_t cur = __atomic_load_n(&r->header->consumer_pid, __ATOMIC_ACQUIRE);
    bool other_alive = cur != 0 && cur != self && tg_process_alive(cur, 0);
    if (other_alive || !__atomic_compare_exchange_n(&r->header->consumer_pid, &cur, self, false, __ATOMIC_ACQ_REL,
                                                    __ATOMIC_RELAXED))
      continue;
    known_paths_[path] = true;
    std::lock_guard<std::mutex> lock(mu_);
    r->id = next_id_++;
    opened_.push_back(Snap(*r));
    rings_[r->id] = std::move(r);
  }
  closedir(d);
}

size_t Collector::DrainLane(Ring& r, unsigned lane, Batch& batch, bool& filling) {
  tg_ring_header* h = r.header;
  tg_lane* l = &tg_lanes(h)[lane];
  const uint64_t cap = tg_lane_capacity(h, lane), mask = cap - 1;
  const tg_record* slots = tg_lane_slots(h, lane);
  uint64_t head = l->head;
  const uint64_t tail = __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE);
  if (tail - head > cap) return 0;  // corrupt positions: never read outside the lane
  if (tail - head > cap / 8) filling = true;
  size_t n = 0;
  while (head < tail && batch.records.size() / TG_RECORD_SIZE < kBatchMax) {
    // the run of published records from head (up to the end of the lane), copied at once
    uint64_t run = 0, limit = std::min<uint64_t>(tail - head, cap - (head & mask));
    while (run < limit && __atomic_load_n(&slots[(head + run) & mask].seq, __ATOMIC_ACQUIRE) == tg_seq_published(head + run))
      run++;
    if (run) {
      const uint8_t* src = reinterpret_cast<const uint8_t*>(&slots[head & mask]);
      batch.records.insert(batch.records.end(), src, src + run * TG_RECORD_SIZE);
      n += run;
      head += run;
      r.stall_since[lane] = 0;
      __atomic_store_n(&l->head, head, __ATOMIC_RELEASE);  // hand the space back to producers as we go
      continue;
    }
    // Claimed but not yet published. A live producer finishes within a call; a dead one never will.
    if (r.alive) break;
    uint64_t now = NowNs();
    if (!r.stall_since[lane]) r.stall_since[lane] = now;
    if (now - r.stall_since[lane] < kTornGraceNs) break;
    r.torn++;
    r.stall_since[lane] = 0;
    __atomic_store_n(&l->head, ++head, __ATOMIC_RELEASE);
  }
  return n;
}

bool Collector::Drain(Ring& r) {
  Batch batch{r.id, {}};
  bool filling = false;
  unsigned lanes = std::min<unsigned>(__atomic_load_n(&r.header->lanes_used, __ATOMIC_ACQUIRE), TG_LANES);
  size_t n = 0;
  for (unsigned lane = 0; lane < lanes; lane++) n += DrainLane(r, lane, batch, filling);
  ReadNames(r);  // after the records: every name they refer to was published before them
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
  if (used > h->names_size) return;
  const char* base = reinterpret_cast<const char*>(h) + h->names_offset;
  std::vector<NameEntry> found;
  while (r.names_read + sizeof(tg_name_entry) <= used) {
    const auto* e = reinterpret_cast<const tg_name_entry*>(base + r.names_read);
    uint32_t step = uint32_t((sizeof(tg_name_entry) + e->len + 3) & ~3u);
    if (e->len > TG_NAME_MAX || r.names_read + step > used) break;  // corrupt: stop reading names of this ring
    found.push_back({r.id, e->id, std::string(e->name, e->len), (e->flags & 1) != 0});
    r.names_read += step;
  }
  if (!found.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& f : found) names_.push_back(std::move(f));
  }
}

bool Collector::Finished(Ring& r, uint64_t now) {
  tg_ring_header* h = r.header;
  if (now - r.checked_alive >= kAliveCheckNs) {
    r.checked_alive = now;
    // the writer's lock says it whatever the writer's PID namespace; /proc for a ring without one
    r.alive = tg_ring_alive(r.fd, h->pid, h->start_ticks) &&
              __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != TG_STATE_EXECED;
  }
  if (r.alive) return false;
  for (unsigned lane = 0; lane < TG_LANES; lane++) {
    const tg_lane* l = &tg_lanes(h)[lane];
    if (__atomic_load_n(&l->head, __ATOMIC_RELAXED) != __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE)) return false;
  }
  return true;
}

Snapshot Collector::Snap(const Ring& r) {
  Snapshot s{r.id, r.path, r.torn, {}};
  memcpy(&s.front, r.header, sizeof s.front);
  return s;
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
    for (auto& [id, r] : rings_) {  // only this thread changes rings_
      if (spooled_ < opts_.spool_limit) busy |= Drain(*r);
      __atomic_store_n(&r->header->consumer_heartbeat, now, __ATOMIC_RELAXED);
      if (Finished(*r, now)) finished.push_back(id);
    }
    for (uint32_t id : finished) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = rings_.find(id);
      closed_.push_back(Snap(*it->second));
      if (opts_.remove_finished) unlink(it->second->path.c_str());
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
  if (batches_.empty()) h.closed.swap(closed_);  // a ring closes only after its last records were taken
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
