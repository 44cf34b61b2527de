// The native side of the agent's ingest: finds the rings in a directory, maps them, and drains their records on a
// background thread into an in-memory spool, so a busy JavaScript thread never lets a ring overflow. JavaScript takes
// what has accumulated in batches (Collector::Take). Only what must be native lives here.
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

// A mapped, validated ring file.
struct Ring {
  ~Ring();
  uint32_t id = 0;  // collector-local id, stable for the ring's life
  std::string path;
  tg_ring_header* header = nullptr;
  size_t size = 0;
  int fd = -1;                           // kept open: the writer's liveness lock is looked at through it
  uint32_t names_read = 0;               // bytes of the name table already delivered
  uint64_t stall_since[TG_LANES] = {};   // per lane: when an unpublished slot at head was first seen, process dead
  uint64_t torn = 0;                     // claimed-but-never-published records skipped after their process died
  bool alive = true;
  uint64_t checked_alive = 0;
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
  tg_ring_front front;
};

// What Take() hands to JavaScript.
struct Harvest {
  std::vector<Snapshot> opened;  // rings found since the last Take
  std::vector<NameEntry> names;
  std::vector<Batch> batches;
  std::vector<Snapshot> closed;  // rings whose process is gone and whose records have all been taken
  size_t records = 0;
};

struct CollectorOptions {
  std::string dir;
  std::string session;           // drain only rings of this session ("" = all)
  uint32_t poll_us = 1000;       // sleep between passes that found nothing
  uint64_t spool_limit = 1 << 22; // records held for JavaScript before draining pauses (rings then fill and count drops)
  bool remove_finished = true;   // delete a ring once its process is gone and it is fully drained
};

class Collector {
 public:
  explicit Collector(CollectorOptions opts);
  ~Collector();
  Harvest Take(size_t max_records);
  std::vector<Snapshot> Status();  // every ring currently drained
  void Stop();
  std::vector<std::string> Problems();  // rings that were rejected, with the reason (each reported once)

 private:
  void Run();
  void Scan();
  bool Drain(Ring& r);  // true when a lane was filling up (more than 1/8 full) before this pass
  size_t DrainLane(Ring& r, unsigned lane, Batch& batch, bool& filling);
  void ReadNames(Ring& r);
  bool Finished(Ring& r, uint64_t now);
  Snapshot Snap(const Ring& r);

  CollectorOptions opts_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards everything below that Take() reads
  std::map<uint32_t, std::unique_ptr<Ring>> rings_;
  std::map<std::string, bool> known_paths_;  // mapped or rejected
  std::vector<Snapshot> opened_;
  std::vector<NameEntry> names_;
  std::deque<Batch> batches_;
  std::vector<Snapshot> closed_;
  std::vector<std::string> problems_;
  std::atomic<size_t> spooled_{0};
  uint32_t next_id_ = 1;
  uint64_t last_scan_ = 0;
};

// Validates a mapped header against the file size; returns "" when usable, else why not.
std::string CheckHeader(const tg_ring_header* h, size_t file_size);
uint64_t NowNs();

}  // namespace tailguard
