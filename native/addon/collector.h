// The native side of the agent's ingest: finds the rings in a directory, maps them, and drains their records on a
// background thread into an in-memory spool, so a busy JavaScript thread never lets a ring overflow. JavaScript takes
// what has accumulated in batches (Collector::Take). Only what must be native lives here.
//
// A ring is written by its process's user, who is not trusted (docs/security.md): its geometry is validated against
// the file's size once and copied; the consumer keeps its own positions; every mapping is guarded against the file
// shrinking (tailguard/guard.h); what cannot be right (positions that go backwards, counters that shrink, a header
// that changes) quarantines the ring: it is reported once, with why, and never read again.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

// A mapped, validated ring file.
struct Ring {
  ~Ring();
  uint32_t id = 0;  // collector-local id, stable for the ring's life
  std::string path;
  tg_ring_header* header = nullptr;
  size_t size = 0;
  int fd = -1;                           // kept open: the writer's liveness lock is looked at through it
  Geometry geo;
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
  uint32_t checksum = 0;                 // of the immutable header, as validated
  bool has_session = false;
  uint64_t pos[TG_LANES] = {};           // this consumer's positions (the ring's copy is only published to)
  uint64_t last_tail[TG_LANES] = {};     // what each lane's counters were at the last pass: they never go back
  uint64_t last_dropped[TG_LANES] = {};
  uint32_t names_read = 0;               // bytes of the name table already delivered
  uint64_t stall_since[TG_LANES] = {};   // per lane: when an unpublished slot at our position was first seen
  uint64_t torn = 0;                     // claimed-but-never-published records skipped
  uint64_t lost = 0;                     // records overwritten before this consumer read them
  bool alive = true;
  uint64_t checked_alive = 0;
  std::string corrupt;                   // why the ring is quarantined ("" while it is not)
};

struct NameEntry {
  uint32_t ring, id;
  std::string name;
  bool truncated;
};

struct Batch {
  uint32_t ring;
  std::vector<uint8_t> records;  // raw 64-byte records as in the ring
};

// A copy of a ring's header and lane counters taken at one moment: what JavaScript sees of a ring.
struct Snapshot {
  uint32_t ring;
  std::string path;
  uint64_t torn;
  uint64_t lost;
  std::string corrupt;
  tg_ring_front front;
};

// What Take() hands to JavaScript.
struct Harvest {
  std::vector<Snapshot> opened;  // rings found since the last Take
  std::vector<NameEntry> names;
  std::vector<Batch> batches;
  std::vector<Snapshot> corrupted;  // rings quarantined since the last Take (after their last good records)
  std::vector<Snapshot> closed;  // rings whose process is gone and whose records have all been taken
  size_t records = 0;
};

struct CollectorOptions {
  std::string dir;
  std::string session;           // drain only rings of this session, as its recorder ("" = all, as the agent)
  uint32_t poll_us = 1000;       // sleep between passes that found nothing
  uint64_t spool_limit = 1 << 22; // records held for JavaScript before draining pauses (rings then fill and count drops)
  bool remove_finished = true;   // delete a ring once its process is gone and every consumer has it
};

class Collector {
 public:
  explicit Collector(CollectorOptions opts);
  ~Collector();
  Harvest Take(size_t max_records);
  std::vector<Snapshot> Status();  // every ring currently drained
  void Stop();
  std::vector<std::string> Problems();  // rings that were rejected or quarantined, with the reason (each once)

 private:
  void Run();
  void Scan();
  std::unique_ptr<Ring> Open(const std::string& path, std::string& why);
  bool Claim(Ring& r);
  bool Drain(Ring& r);  // true when a lane was filling up (more than 1/8 full) before this pass
  size_t DrainLane(Ring& r, unsigned lane, Batch& batch, bool& filling, uint64_t now);
  void ReadNames(Ring& r);
  void Check(Ring& r, uint64_t now);  // liveness, and whether the ring is still what was validated
  void Quarantine(Ring& r, const std::string& why);
  bool Finished(Ring& r);
  Snapshot Snap(const Ring& r);
  bool session_mode() const { return !opts_.session.empty(); }

  CollectorOptions opts_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards everything below that Take() reads
  std::map<uint32_t, std::unique_ptr<Ring>> rings_;
  std::map<std::string, bool> known_paths_;  // mapped or rejected
  std::vector<Snapshot> opened_;
  std::vector<NameEntry> names_;
  std::deque<Batch> batches_;
  std::vector<Snapshot> corrupted_;
  std::vector<Snapshot> closed_;
  std::vector<std::string> problems_;
  std::atomic<size_t> spooled_{0};
  uint32_t next_id_ = 1;
  uint64_t last_scan_ = 0;
  unsigned absorbed_ = 0;  // SIGBUS the guard had absorbed at the last pass
};

// Validates a copy of a header against the file size; returns "" when usable, else why not.
std::string CheckHeader(const tg_ring_header* h, size_t file_size);
uint64_t NowNs();

}  // namespace tailguard
