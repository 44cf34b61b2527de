// The one drain of the rings: what the native collector (native/addon/collector.cc) has drained, handed over ring by
// ring. The agent, `tailguard run --record` (recording.ts) and `tailguard bench`'s hold collector each say what they
// keep of a ring and do with its records; opening, routing and closing rings, and waiting for a session's last
// records, are done here.
import { native, type CollectorOptions, type RingInfo } from "./native.js";

/** What a drain's user does with each ring; R is what it keeps per ring. */
export interface DrainSink<R> {
  /** A ring was found: what to keep for it. */
  opened(info: RingInfo): R;
  /** A kernel or host-function name of the ring's process. */
  name?(ring: R, id: number, demangled: string): void;
  /** A batch of the ring's records: a whole number of 64-byte records, each lane's in order. */
  records(ring: R, data: Buffer): void;
  /** After each take's batches, before its quarantined and closed rings. */
  taken?(): void;
  /** The ring was quarantined after its last good records (undefined: it was never opened). */
  corrupted?(ring: R | undefined, info: RingInfo): void;
  /** Its process has gone and every record of it has been handed over. */
  closed?(ring: R, info: RingInfo): void;
}

export class Drain<R> {
  private readonly collector;
  private readonly rings = new Map<number, R>();

  constructor(dir: string, options: CollectorOptions, private readonly sink: DrainSink<R>) {
    this.collector = new (native().Collector)(dir, options);
  }

  /** Hands over what the collector has drained, `slice` records at a time while takes come back full, until `limit`
   *  records are handed over (at least one take); returns how many. */
  pump(slice: number, limit = slice): number {
    let total = 0;
    for (;;) {
      const h = this.collector.take(slice);
      for (const info of h.opened) this.rings.set(info.id!, this.sink.opened(info));
      if (this.sink.name)
        for (const n of h.names) {
          const ring = this.rings.get(n.ring);
          if (ring !== undefined) this.sink.name(ring, n.id, n.demangled);
        }
      for (const b of h.batches) {
        const ring = this.rings.get(b.ring);
        if (ring !== undefined) this.sink.records(ring, b.data);
      }
      this.sink.taken?.();
      for (const info of h.corrupted) this.sink.corrupted?.(this.rings.get(info.id!), info);
      for (const info of h.closed) {
        const ring = this.rings.get(info.id!);
        this.rings.delete(info.id!);
        if (ring !== undefined) this.sink.closed?.(ring, info);
      }
      total += h.records;
      if (h.records < slice || total >= limit) return total;
    }
  }

  /** Rings open (their processes run, or their last records are not handed over yet). */
  get openRings(): number {
    return this.rings.size;
  }

  /** Drains until every ring is closed. `graceMs` bounds only the wait for processes that outlive the command that
   *  was recorded (daemons it started): records already in rings are always drained. */
  async finish(slice: number, graceMs: number): Promise<void> {
    const until = Date.now() + graceMs;
    // A ring is found within the collector's scan period (50 ms): give short-lived children time to show up.
    await sleep(120);
    for (;;) {
      if (this.pump(slice) > 0) continue;
      if (this.rings.size === 0) {
        await sleep(60);
        if (this.pump(slice) === 0 && this.rings.size === 0) break;
        continue;
      }
      const pending = this.collector.status().reduce((a, r) => a + (r.counters.tail - r.counters.head), 0);
      if (pending === 0 && Date.now() > until) break; // only live processes hold rings open now
      await sleep(5);
    }
  }

  /** The rings the collector follows, with their headers and counters now. */
  status(): RingInfo[] {
    return this.collector.status();
  }

  /** What the collector found wrong since the last call (a line each, for people). */
  problems(): string[] {
    return this.collector.problems();
  }

  close(): void {
    this.collector.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
