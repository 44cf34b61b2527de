// The queries Grafana and Prometheus run for tailguard, read from the files we ship: every panel's targets in
// dashboards/tailguard.json as Grafana sends them with each template variable at "All", and every rule's expression
// in dashboards/rules.yml with the recording rules it uses written out (so it can be asked of a Prometheus that does
// not evaluate the rules). For tests that run them against a real Prometheus (two-nodes.test.ts,
// collector-path.test.ts).
import { readFileSync } from "node:fs";
import path from "node:path";

import { root } from "./native.js";

export interface ShippedQuery {
  /** where it comes from: `panel "TITLE"` or `rule NAME` */
  source: string;
  expr: string;
  /** for a recorded series: the expression that records it */
  recordedFrom?: string;
}

/** An expression as Grafana sends it: every variable "All" (.*), $__rate_interval 1m. */
function asSent(expr: string): string {
  return expr.replaceAll("$__rate_interval", "1m").replace(/\$\{?\w+\}?/g, ".*");
}

/** Every panel's queries, in the dashboard's order. */
export function panelQueries(): ShippedQuery[] {
  const dashboard = JSON.parse(readFileSync(path.join(root, "dashboards/tailguard.json"), "utf8"));
  const panels = (ps: any[]): any[] => ps.flatMap((p) => [p, ...panels(p.panels ?? [])]);
  return panels(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).filter((t: any) => t.expr).map((t: any) => ({ source: `panel "${p.title}"`, expr: asSent(t.expr) })),
  );
}

/** A panel's first query, by title. */
export function panelQuery(title: string): string {
  const q = panelQueries().find((x) => x.source === `panel "${title}"`);
  if (!q) throw new Error(`dashboards/tailguard.json has no panel titled "${title}"`);
  return q.expr;
}

/** Every rule's expression as written, and each recording rule's recorded series by name (for a Prometheus that
 *  evaluates dashboards/rules.yml). rules.yml is plain enough YAML for this reader: `- record:`/`- alert:` lines each
 *  followed by an `expr:` line. */
export function ruleQueries(): ShippedQuery[] {
  const lines = readFileSync(path.join(root, "dashboards/rules.yml"), "utf8").split("\n");
  const out: ShippedQuery[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i].match(/^\s*- (record|alert): (\S+)/);
    if (!head) continue;
    const exprLine = lines.slice(i + 1).find((l) => /^\s+expr: /.test(l));
    if (!exprLine) throw new Error(`dashboards/rules.yml: ${head[2]} has no expr line`);
    const expr = exprLine.replace(/^\s+expr: /, "").trim();
    out.push({ source: `rule ${head[2]}`, expr });
    if (head[1] === "record") out.push({ source: `recorded ${head[2]}`, expr: head[2], recordedFrom: expr });
  }
  return out;
}
