// The agent's --spans-file (OTLP JSON, one export request a line) as tests read it while the agent still writes it:
// only whole lines, so a line half written when the file is read is left for the next read.
import { existsSync, readFileSync } from "node:fs";

/** Each whole line's resourceSpans (none while the file does not exist). */
export function resourceSpansOf(file: string): any[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter(Boolean).flatMap((l) => JSON.parse(l).resourceSpans ?? []);
}

/** Every span of the file's whole lines, without its resource. */
export const spansOf = (file: string): any[] =>
  resourceSpansOf(file).flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans));
