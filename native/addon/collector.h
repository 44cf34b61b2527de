// The native side of the agent's ingest: finds the rings in a directory, maps them, and drains their records on a
// background thread into an in-memory spool, so a busy JavaScript thread never lets a ring overflow. JavaScript takes
// what has accumulated in batches (Collector::Take). Only what must be native lives here.
//
// How each ring is read, validated and quarantined is ring_reader.h's; here: finding rings, the thread, the spool,
// and what JavaScript is told.
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

#include "ring_reader.h"

namespace tailguard {

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
  bool Drain(Ring& r);  // true when a lane was filling up (more than 1/8 full) before this pass
  void Report(Ring& r);  // says once that the ring was quarantined
  Snapshot Snap(const Ring& r);
  bool session_mode() const { return !opts_.session.empty(); }
  Consumer who() const { return session_mode() ? Consumer::Session : Consumer::Agent; }

  CollectorOptions opts_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards everything below that Take() reads
  std::map<uint32_t, std::unique_ptr<Ring>> rings_;
  std::map<std::string, bool> known_paths_;  // mapped (true), or rejected or finished (false): not opened again
  unsigned scans_ = 0;                        // Scan()s so far: every kPruneScans-th forgets paths gone from disk
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

}  // namespace tailguard
