// One ring as a consumer reads it: validated by copy, adopted, claimed, drained lane by lane, its names read, looked
// at again for damage. No threads and no locks: the collector (collector.h) runs it on its drain thread; the fuzzer
// (test/fuzz/ring_fuzz.cc) runs it on a buffer that it corrupts between passes.
//
// A ring is written by its process's user, who is not trusted (docs/security.md): its geometry is validated against
// the file's size once and copied; the consumer keeps its own positions; what cannot be right (positions that go
// backwards, counters that shrink, a header that changes) sets Ring::corrupt, and the ring is never read again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tailguard/record.h"

namespace tailguard {

// A ring's geometry as validated when it was opened: never read again from the file.
struct Geometry {
  uint32_t lane_capacity = 0;
  uint64_t names_offset = 0, names_size = 0, records_offset = 0, file_size = 0;
  uint32_t capacity(unsigned lane) const { return lane == TG_SHARED_LANE ? lane_capacity * TG_SHARED_LANE_FACTOR : lane_capacity; }
  uint64_t lane_offset(unsigned lane) const { return records_offset + uint64_t(lane) * lane_capacity * TG_RECORD_SIZE; }
};

// A mapped (or, for the fuzzer, allocated) and validated ring.
struct Ring {
  ~Ring();
  uint32_t id = 0;  // collector-local id, stable for the ring's life
  std::string path;
  tg_ring_header* header = nullptr;
  size_t size = 0;
  bool mapped = false;                   // header is a guarded mapping of the file (else the caller's memory)
  int fd = -1;                           // kept open: the writer's liveness lock is looked at through it
  Geometry geo;
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
  uint32_t checksum = 0;                 // of the immutable header, as validated
  uint64_t pos[TG_LANES] = {};           // this consumer's positions (the ring's copy is only published to)
  uint64_t last_tail[TG_LANES] = {};     // what each lane's counters were at the last pass: they never go back
  uint64_t last_dropped[TG_LANES] = {};
  uint64_t last_launches[TG_LANES] = {};
  uint32_t names_read = 0;               // bytes of the name table already delivered
  uint64_t stall_since[TG_LANES] = {};   // per lane: when an unpublished slot at our position was first seen
  uint64_t torn = 0;                     // claimed-but-never-published records skipped
  uint64_t lost = 0;                     // records overwritten before this consumer read them
  bool alive = true;                     // its writer lives (Check)
  uint64_t checked_alive = 0;
  std::string corrupt;                   // why the ring is quarantined ("" while it is not)
};

struct NameEntry {
  uint32_t ring, id;
  std::string name;
  bool truncated;
};

// The two consumers of record.h: the agent (head, consumer_pid), or a recording session's recorder.
enum class Consumer { Agent, Session };

// No lane counts this many records (or drops, or launches) in a process's life: a counter past it is damage.
constexpr uint64_t kCounterMax = 1ull << 48;
// A lane's counters are within what a real lane can count.
inline bool CountersPlausible(const tg_lane& l) {
  return l.tail <= kCounterMax && l.dropped <= kCounterMax && l.launches <= kCounterMax &&
         l.dropped_launches <= kCounterMax;
}

// Validates a copy of a header against the file size; returns "" when usable, else why not.
std::string CheckHeader(const tg_ring_header* h, size_t file_size);
// Takes the geometry and identity of a header copy that CheckHeader accepted.
void Adopt(Ring& r, const tg_ring_header& copy);
// Becomes the ring's consumer of this kind (one of each at a time); false when a live other one has it.
bool Claim(Ring& r, Consumer who);
// Moves published records of every lane to `out` (up to max_records), then the new kernel names to `names`. Returns
// whether a lane was filling up (more than 1/8 full). Sets r.corrupt on damage, and reads nothing more then.
bool Drain(Ring& r, Consumer who, std::vector<uint8_t>& out, std::vector<NameEntry>& names, uint64_t now,
           size_t max_records);
// Every 100 ms: whether the writer lives, and whether the header is still the one validated.
void Check(Ring& r, uint64_t now);
// The writer is gone and every record was read (or the ring is quarantined).
bool Finished(const Ring& r);
// Marks the ring corrupt (once): the file's changed size, when it changed, is the reason, else `why`.
void Quarantine(Ring& r, const std::string& why);

uint64_t NowNs();

}  // namespace tailguard
