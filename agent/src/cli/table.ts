// Fixed-width text tables for the terminal: the agent's --demo report (agent-command.ts) and `tailguard top` (top.ts).

/** Milliseconds with two decimals; "-" when there are none. */
export const msText = (v: number | null | undefined): string => (v === null || v === undefined ? "-" : v.toFixed(2));

/** A duration in ns as milliseconds with two decimals; "-" when there is none. */
export const ms = (ns: number | null | undefined): string => msText(ns === null || ns === undefined ? ns : ns / 1e6);

/** One column: its title, its width (separator included) and which side it is aligned to. Left-aligned text longer
 *  than the column is cut to leave one space; numbers (right-aligned) are never cut. */
export interface Column {
  title: string;
  width: number;
  align: "left" | "right";
}

/** The header and one line per row, each indented by two spaces. */
export function formatColumns(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]) =>
    "  " +
    columns
      .map((c, i) => (c.align === "left" ? (cells[i] ?? "").slice(0, c.width - 1).padEnd(c.width) : (cells[i] ?? "").padStart(c.width)))
      .join("");
  return [line(columns.map((c) => c.title)), ...rows.map(line)];
}
