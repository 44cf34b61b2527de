// One ring as a consumer reads it (ring_reader.h): the consumer side of the queue protocol in tailguard/record.h.
#include "ring_reader.h"

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
constexpr uint64_t kAliveCheckNs = 100'000'000;   // check each ring's process and header every 100 ms
constexpr uint64_t kTornGraceNs = 200'000'000;    // a dead process's half-written slot is skipped after this
constexpr uint64_t kStallNs = 2'000'000'000;      // a live one's after this (its thread stopped, or the slot is junk)
constexpr uint32_t kCapacityMax = 1u << 24;       // TAILGUARD_RING_RECORDS' maximum
}  // namespace

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

Ring::~Ring() {
  if (header && mapped) {
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

void Adopt(Ring& r, const tg_ring_header& copy) {
  r.geo.lane_capacity = copy.lane_capacity;
  r.geo.names_offset = copy.names_offset;
  r.geo.names_size = copy.names_size;
  r.geo.records_offset = copy.records_offset;
  r.geo.file_size = copy.file_size;
  r.pid = copy.pid;
  r.start_ticks = copy.start_ticks;
  r.checksum = copy.checksum;
}

void Quarantine(Ring& r, const std::string& why) {
  if (!r.corrupt.empty()) return;
  // what a shrunk file looks like (zeros, once its writer re-extends it) is best told by its size
  struct stat st;
  if (r.fd >= 0 && fstat(r.fd, &st) == 0 && size_t(st.st_size) != r.size)
    r.corrupt = "the file was truncated under the agent (" + std::to_string(st.st_size) + " bytes, not " +
                std::to_string(r.size) + ")";
  else
    r.corrupt = why;
}

// Our position of each lane starts where the ring says the last consumer of our kind stopped, or at the oldest
// record still there; it is published before we count as a consumer, so the producer never honours a stale one.
bool Claim(Ring& r, Consumer who) {
  tg_ring_header* h = r.header;
  uint32_t self = uint32_t(getpid());
  uint32_t* owner = who == Consumer::Session ? &h->session_consumer_pid : &h->consumer_pid;
  uint32_t cur = __atomic_load_n(owner, __ATOMIC_ACQUIRE);
  if (cur != 0 && cur != self && tg_process_alive(cur, 0)) return false;  // a live other consumer keeps it
  for (unsigned lane = 0; lane < TG_LANES; lane++) {
    tg_lane* l = &tg_lanes(h)[lane];
    uint64_t* at = who == Consumer::Session ? &l->session_head : &l->head;
    uint64_t pos = __atomic_load_n(at, __ATOMIC_ACQUIRE), tail = __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE);
    uint64_t cap = r.geo.capacity(lane);
    if (pos > tail || tail - pos > cap) pos = tail > cap ? tail - cap : 0;  // only the last lap is still there
    r.pos[lane] = pos;
    r.last_tail[lane] = tail;
    r.last_dropped[lane] = __atomic_load_n(&l->dropped, __ATOMIC_RELAXED);
    r.last_launches[lane] = __atomic_load_n(&l->launches, __ATOMIC_RELAXED);
    __atomic_store_n(at, pos, __ATOMIC_RELEASE);
  }
  return __atomic_compare_exchange_n(owner, &cur, self, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

static size_t DrainLane(Ring& r, unsigned lane, Consumer who, std::vector<uint8_t>& out, bool& filling, uint64_t now,
                        size_t max_records) {
  tg_lane* l = &tg_lanes(r.header)[lane];
  const uint64_t cap = r.geo.capacity(lane), mask = cap - 1;
  const tg_record* slots =
      reinterpret_cast<const tg_record*>(reinterpret_cast<const char*>(r.header) + r.geo.lane_offset(lane));
  uint64_t pos = r.pos[lane];
  const uint64_t tail = __atomic_load_n(&l->tail, __ATOMIC_ACQUIRE);
  const uint64_t dropped = __atomic_load_n(&l->dropped, __ATOMIC_RELAXED);
  const uint64_t launches = __atomic_load_n(&l->launches, __ATOMIC_RELAXED);
  if (tail < r.last_tail[lane] || dropped < r.last_dropped[lane] || launches < r.last_launches[lane] ||
      tail > kCounterMax || dropped > kCounterMax || launches > kCounterMax) {
    Quarantine(r, "lane " + std::to_string(lane) + "'s counters went backwards or past any real count (tail " +
                      std::to_string(tail) + ", launches " + std::to_string(launches) + ", dropped " +
                      std::to_string(dropped) + ")");
    return 0;
  }
  r.last_tail[lane] = tail;
  r.last_dropped[lane] = dropped;
  r.last_launches[lane] = launches;
  if (tail - pos > cap) {  // the producer lapped us (it did not yet honour our position): those records are gone
    r.lost += tail - cap - pos;
    pos = tail - cap;
  }
  if (tail - pos > cap / 8) filling = true;
  size_t n = 0;
  uint64_t* published = who == Consumer::Session ? &l->session_head : &l->head;
  while (pos < tail && n < max_records) {
    // the run of published records from pos (up to the end of the lane), copied at once
    uint64_t run = 0, limit = std::min<uint64_t>({tail - pos, cap - (pos & mask), max_records - n});
    while (run < limit &&
           __atomic_load_n(&slots[(pos + run) & mask].seq, __ATOMIC_ACQUIRE) == tg_seq_published(pos + run))
      run++;
    if (run) {
      const uint8_t* src = reinterpret_cast<const uint8_t*>(&slots[pos & mask]);
      out.insert(out.end(), src, src + run * TG_RECORD_SIZE);
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

static void ReadNames(Ring& r, std::vector<NameEntry>& names) {
  tg_ring_header* h = r.header;
  uint32_t used = __atomic_load_n(&h->names_used, __ATOMIC_ACQUIRE);
  if (used > r.geo.names_size || used < r.names_read) {
    Quarantine(r, "its name table says " + std::to_string(used) + " bytes are used, which cannot be");
    return;
  }
  const char* base = reinterpret_cast<const char*>(h) + r.geo.names_offset;
  while (r.names_read + sizeof(tg_name_entry) <= used) {
    tg_name_entry e;
    memcpy(&e, base + r.names_read, sizeof e);  // a copy: the length read is the length used
    uint32_t step = uint32_t((sizeof(tg_name_entry) + e.len + 3) & ~3u);
    if (e.len > TG_NAME_MAX || r.names_read + step > used) {
      Quarantine(r, "a kernel name entry at byte " + std::to_string(r.names_read) + " of its name table is malformed");
      return;
    }
    names.push_back({r.id, e.id, std::string(base + r.names_read + sizeof(tg_name_entry), e.len), (e.flags & 1) != 0});
    r.names_read += step;
  }
}

bool Drain(Ring& r, Consumer who, std::vector<uint8_t>& out, std::vector<NameEntry>& names, uint64_t now,
           size_t max_records) {
  if (!r.corrupt.empty()) return false;
  bool filling = false;
  unsigned lanes = std::min<unsigned>(__atomic_load_n(&r.header->lanes_used, __ATOMIC_ACQUIRE), TG_LANES);
  size_t n = 0;
  for (unsigned lane = 0; lane < lanes && r.corrupt.empty() && n < max_records; lane++)
    n += DrainLane(r, lane, who, out, filling, now, max_records - n);
  if (r.corrupt.empty()) ReadNames(r, names);  // after the records: every name they refer to was published before them
  return filling;
}

void Check(Ring& r, uint64_t now) {
  if (now - r.checked_alive < kAliveCheckNs) return;
  r.checked_alive = now;
  tg_ring_header* h = r.header;
  // the writer's lock says it whatever the writer's PID namespace; /proc for a ring without one
  r.alive = tg_ring_alive(r.fd, r.pid, r.start_ticks) && __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != TG_STATE_EXECED;
  if (!r.corrupt.empty()) return;
  static thread_local tg_ring_header copy;
  memcpy(&copy, h, sizeof copy);
  std::string why = CheckHeader(&copy, r.size);
  if (copy.checksum != r.checksum || !why.empty())
    Quarantine(r, "its header changed after it was validated (" + (why.empty() ? std::string("another process") : why) + ")");
}

bool Finished(const Ring& r) {
  if (r.alive) return false;
  if (!r.corrupt.empty()) return true;
  for (unsigned lane = 0; lane < TG_LANES; lane++)
    if (r.pos[lane] != __atomic_load_n(&tg_lanes(r.header)[lane].tail, __ATOMIC_ACQUIRE)) return false;
  return true;
}

}  // namespace tailguard
