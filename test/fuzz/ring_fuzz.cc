// libFuzzer target: the agent's ring reader (native/addon/ring_reader.cc) against a ring that its writer's user
// corrupts while it is drained. The input is a program: a header (raw bytes, or a valid one), then operations that a
// producer, an attacker and the consumer perform in turn -- records published as the protocol says, bytes and 64-bit
// words written anywhere in the file, ranges zeroed, names appended, drain passes as the agent or a session, checks,
// re-claims, the writer's death. Whatever happens the reader must not crash (ASan, UBSan), read outside the file, loop
// without bound, or hand out anything but whole records of the lanes; a quarantined ring must stay quarantined.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../native/addon/ring_reader.h"
#include "tailguard/ring_files.h"

using namespace tailguard;

namespace {
constexpr uint32_t kCap = 64;  // records per lane: small, so lanes wrap and fill within one input

struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (n--, *p++) : 0; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | u8();
    return v;
  }
};

uint8_t* file;      // the ring's bytes, one buffer for every input
size_t file_size;

void valid_header(tg_ring_header* h) {
  memcpy(h->magic, TG_RING_MAGIC, 8);
  h->layout_version = TG_LAYOUT_VERSION;
  h->header_size = TG_HEADER_SIZE;
  h->record_size = TG_RECORD_SIZE;
  h->lane_count = TG_LANES;
  h->lane_capacity = kCap;
  h->names_offset = TG_NAMES_OFFSET;
  h->names_size = TG_NAMES_SIZE;
  h->records_offset = uint64_t(TG_NAMES_OFFSET) + TG_NAMES_SIZE;
  h->file_size = file_size;
  h->pid = 1;
  h->cmdline_len = 5;
  memcpy(h->cmdline, "fuzz", 5);
  h->checksum = tg_header_checksum(h);
  h->state = TG_STATE_RUNNING;
}

// What the producer does: a record of lane `lane` published at its tail, as ring.c would (or counted dropped).
void produce(tg_ring_header* h, unsigned lane, uint8_t kind) {
  tg_lane* l = &tg_lanes(h)[lane];
  uint32_t cap = lane == TG_SHARED_LANE ? kCap * TG_SHARED_LANE_FACTOR : kCap;
  uint64_t pos = l->tail;
  uint64_t oldest = std::min(l->head, l->session_head);
  if (pos - oldest >= cap) {
    l->dropped++;
    return;
  }
  tg_record* r = reinterpret_cast<tg_record*>(file + TG_NAMES_OFFSET + TG_NAMES_SIZE +
                                              (uint64_t(lane) * kCap + (pos & (cap - 1))) * TG_RECORD_SIZE);
  memset(r, 0, sizeof *r);
  r->kind = kind;
  r->seq = tg_seq_published(pos);
  l->tail = pos + 1;
  if (h->lanes_used < lane + 1) h->lanes_used = lane + 1;
}

void add_name(tg_ring_header* h, uint16_t len) {
  len %= 80;
  uint32_t at = h->names_used & ~3u;  // the producer's own entries stay aligned whatever an attacker wrote
  uint32_t step = uint32_t((sizeof(tg_name_entry) + len + 3) & ~3u);
  if (at > 65536 - step) return;
  auto* e = reinterpret_cast<tg_name_entry*>(file + TG_NAMES_OFFSET + at);
  e->id = h->names_count + 1;
  e->len = len;
  e->flags = 0;
  memset(e->name, 'k', len);
  h->names_count++;
  h->names_used = at + step;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  file_size = tg_ring_file_size(kCap);
  file = static_cast<uint8_t*>(aligned_alloc(4096, (file_size + 4095) & ~size_t(4095)));
  memset(file, 0, file_size);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  // a fresh ring: header and lanes, the records, the part of the name table inputs reach
  memset(file, 0, uint64_t(TG_NAMES_OFFSET) + 65536 + 8);
  memset(file + TG_NAMES_OFFSET + TG_NAMES_SIZE, 0, file_size - TG_NAMES_OFFSET - TG_NAMES_SIZE);
  auto* h = reinterpret_cast<tg_ring_header*>(file);
  if (in.u8() & 1) {  // a header of raw bytes: CheckHeader must say why it is not a ring, or accept a real one
    size_t take = std::min<size_t>(in.n, TG_HEADER_SIZE);
    memcpy(file, in.p, take);
    in.p += take;
    in.n -= take;
  } else {
    valid_header(h);
  }
  static tg_ring_header copy;
  memcpy(&copy, h, sizeof copy);
  size_t claimed_size = (in.u8() & 3) == 0 ? size_t(in.u64() % (2 * file_size)) : file_size;
  if (!CheckHeader(&copy, claimed_size).empty() || claimed_size != file_size) return 0;

  Ring r;
  r.header = h;
  r.size = file_size;
  Adopt(r, copy);
  Consumer who = in.u8() & 1 ? Consumer::Session : Consumer::Agent;
  uint64_t now = 1'000'000'000;
  Claim(r, who);
  std::vector<uint8_t> out;
  std::vector<NameEntry> names;
  for (int ops = 0; in.n && ops < 4096; ops++) {
    uint8_t op = in.u8();
    switch (op % 10) {
      case 0:
      case 1:
        for (int k = in.u8() % 32; k >= 0; k--) produce(h, in.u8() % TG_LANES, uint8_t(1 + in.u8() % 9));
        break;
      case 2: {  // an attacker's word anywhere in the file
        uint64_t at = in.u64() % (file_size - 8);
        uint64_t v = in.u64();
        memcpy(file + at, &v, 8);
        break;
      }
      case 3: {  // an attacker's word in the header and lanes, where it hurts most
        uint64_t at = in.u64() % (TG_NAMES_OFFSET - 8);
        uint64_t v = in.u64();
        memcpy(file + at, &v, 8);
        break;
      }
      case 4: {  // a range zeroed (a lane, a header part)
        uint64_t at = in.u64() % TG_NAMES_OFFSET, len = in.u8() * 32ull;
        memset(file + at, 0, std::min<uint64_t>(len, TG_NAMES_OFFSET - at));
        break;
      }
      case 5:
      case 6: {
        bool was = !r.corrupt.empty();
        size_t before = out.size();
        Drain(r, who, out, names, now, 1 + in.u8() * 16u);
        if ((out.size() - before) % TG_RECORD_SIZE != 0) abort();  // whole records only
        if (was && out.size() != before) abort();                   // a quarantined ring stays silent
        for (unsigned lane = 0; lane < TG_LANES; lane++)
          if (r.pos[lane] > r.last_tail[lane] && r.corrupt.empty()) abort();  // never past what was published
        now += 1'000'000ull * in.u8();
        break;
      }
      case 7:
        now += 100'000'001;
        Check(r, now);
        break;
      case 8:
        add_name(h, in.u8());
        break;
      case 9:
        if (in.u8() & 1) r.alive = false;  // the writer died: torn slots are skipped after a grace
        else Claim(r, who);
        break;
    }
    if (out.size() > (64u << 20)) out.clear();
    if (names.size() > 100000) names.clear();
  }
  Finished(r);
  return 0;
}
