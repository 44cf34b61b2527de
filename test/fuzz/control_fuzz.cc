// libFuzzer target: what a shim believes of the GPU's control files and the admin's policy (tailguard/control.h,
// tailguard/policy.h), all of which other users or a corrupt file may fill with anything. The first input byte picks
// the validator: a control block's header, a control file's name, or a policy file's text. None may crash or read
// outside its input; a policy either parses (ceilings within -100..100, the same answer twice) or is refused with the
// line that is wrong.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tailguard/control.h"
#include "tailguard/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0] % 3;
  data++, size--;
  if (which == 0) {
    static tg_ctl c;
    memset(&c, 0, sizeof c);
    memcpy(&c, data, size < sizeof c ? size : sizeof c);
    uint8_t uuid[16] = {};
    if (size >= 32) memcpy(uuid, data + 16, 16);
    int ok = tg_ctl_header_ok(&c, uuid), again = tg_ctl_header_ok(&c, nullptr);
    if (ok && !again) abort();  // the GPU's own block is a whole block
  } else if (which == 1) {
    std::string name(reinterpret_cast<const char*>(data), size);
    uint8_t uuid[16];
    uint32_t uid;
    unsigned alt;
    if (tg_ctl_name_parse(name.c_str(), uuid, &uid, &alt) == 0 && (alt > TG_CTL_ALTERNATES || name.size() < 4 + 32 + 2 + 4))
      abort();
  } else {
    static tg_policy p, q;
    char err[300], err2[300];
    p.admin_uid = q.admin_uid = 1000;
    int rc = tg_policy_parse(reinterpret_cast<const char*>(data), size, &p, err, sizeof err);
    int rc2 = tg_policy_parse(reinterpret_cast<const char*>(data), size, &q, err2, sizeof err2);
    if (rc != rc2 || (rc != 0 && strncmp(err, "line ", 5) != 0) || (rc == 0 && err[0])) abort();
    for (uint32_t u = 0; u < 4; u++)
      for (uint32_t g = 0; g < 4; g++) {
        int32_t c = tg_policy_ceiling(&p, u * 500, g * 500);
        if (c < -100 || c > 100 || c != tg_policy_ceiling(&q, u * 500, g * 500)) abort();
      }
    if (rc != 0 && (p.rules != 0 || p.default_ceiling != 0)) abort();  // a refused policy leaves the defaults only
  }
  return 0;
}
