// Device times of request windows: the shim's GPU_TIME records (native/shim/gpu_time.c, docs/gpu-time.md), kept by
// window until the window settles, and what they mean for it (queue delay, GPU time, completion latency).
//
// A window's GPU_TIME record is written by the thread whose sync ended the window, right after its end record, so it
// normally arrives with it; one read later (the shim read the events at a later call) can come after the window
// settled, and is then only counted. The map is bounded: a process whose windows never settle cannot grow it.
import { AT_GPU_TIME_END, AT_GPU_TIME_SEQ, AT_GPU_TIME_START, AT_OP, GpuMissingName, RecordField } from "./record.js";
import { deviceNs, type DeviceTimes } from "../model.js";

const AT_RESULT = RecordField.result[0];
/** Device times kept for windows still to settle. */
const KEPT = 256;

export class GpuTimes {
  private readonly byWindow = new Map<number, { start: bigint; end: bigint }>();
  /** GPU_TIME records that came after their window had settled (or for a window never seen) */
  late = 0;

  /** Reads the GPU_TIME record at byte o; returns the reason its window has no device times, or null. */
  record(data: Buffer, o: number): string | null {
    const seq = Number(data.readBigUInt64LE(o + AT_GPU_TIME_SEQ));
    if (data[o + AT_OP] !== 1) return GpuMissingName[data.readInt16LE(o + AT_RESULT)] ?? "unknown";
    if (this.byWindow.size >= KEPT) {
      const oldest = this.byWindow.keys().next().value!;
      this.byWindow.delete(oldest);
      this.late++;
    }
    this.byWindow.set(seq, { start: data.readBigUInt64LE(o + AT_GPU_TIME_START), end: data.readBigUInt64LE(o + AT_GPU_TIME_END) });
    return null;
  }

  /** The device times of window `seq` that began (was submitted) at `submitted` and whose sync returned at `returned`,
   *  and forgets them; undefined when none came. */
  take(seq: number, submitted: bigint, returned: bigint): DeviceTimes | undefined {
    const d = this.byWindow.get(seq);
    if (!d) return undefined;
    this.byWindow.delete(seq);
    return deviceTimes(submitted, d.start, d.end, returned);
  }

  /** Forgets the device times of windows before `seq` (settled without them: their record came too late). */
  forgetBefore(seq: number): void {
    for (const k of this.byWindow.keys())
      if (k < seq) {
        this.byWindow.delete(k);
        this.late++;
      }
  }
}

/** A window's device times and the durations between them (docs/gpu-time.md, "What each time means"), each
 *  deviceNs. */
export function deviceTimes(submitted: bigint, gpuStart: bigint, gpuEnd: bigint, returned: bigint): DeviceTimes {
  return {
    submitted,
    gpuStart,
    gpuEnd,
    returned,
    queueNs: deviceNs(gpuStart - submitted),
    gpuNs: deviceNs(gpuEnd - gpuStart),
    completionNs: deviceNs(returned - gpuEnd),
  };
}
