// Waiting in tests: for a while, or until something holds (a file drained, a span exported), with a clear error.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` until it holds; after `ms` throws "timed out waiting for WHAT" (`what` may be computed then). */
export async function until(what: string | (() => string), ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(25);
  }
}
