// The live view's page, served at / by the agent (web.ts): one self-contained document, inline CSS and script, no
// other asset. It polls /api/state (live.ts) every second and draws with inline SVG; the elements the tests and
// scripts look for carry data-testid attributes (test/e2e/web.test.ts). Kept in the compiled code rather than in a file
// beside it, so that every way of installing the agent (npm, the container image) has it.
// (No backtick or dollar-brace in the page: it is a raw template literal.)
export const LIVE_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tailguard live</title>
<style>
  :root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #fff; --panel: #f6f8fa; --bad: #cf222e; --ok: #1a7f37; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
  header h1 { font-size: 17px; margin: 0; }
  #status { font-size: 13px; color: var(--muted); }
  #status.ok::before { content: "\25CF "; color: var(--ok); }
  #status.down { color: var(--bad); font-weight: 600; }
  #range { margin-left: auto; font-size: 13px; }
  #range button { font: inherit; border: 1px solid var(--line); background: var(--bg); padding: 2px 8px; cursor: pointer; }
  #range button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
  main { padding: 12px 20px 30px; }
  h2 { font-size: 15px; margin: 20px 0 8px; }
  h2 small { font-weight: normal; color: var(--muted); }
  #totals { display: flex; flex-wrap: wrap; gap: 8px 24px; color: var(--muted); }
  #totals b { color: var(--fg); font-variant-numeric: tabular-nums; }
  #totals .bad b { color: var(--bad); }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  th.text, td.text { text-align: left; }
  tr.gone td { color: var(--muted); }
  tr.gone-summary button { font: inherit; color: var(--muted); border: 0; background: none; padding: 0; cursor: pointer; }
  tr.corrupt td { color: #b3261e; }
  td.bad { color: var(--bad); font-weight: 600; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
  .empty { color: var(--muted); padding: 8px 0; }
  #charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
  figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px 4px; }
  figcaption { font-size: 13px; margin-bottom: 2px; }
  figcaption .muted, .muted { color: var(--muted); }
  svg { display: block; width: 100%; }
  svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
  .grid { stroke: var(--line); stroke-width: 1; }
  .legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; color: var(--muted); margin: 4px 0; }
</style>
</head>
<body>
<header>
  <h1>tailguard live</h1>
  <span id="status" data-testid="status">connecting…</span>
  <span id="range" role="group" aria-label="time range">
    <button type="button" data-seconds="60" aria-pressed="true">1 min</button><button type="button" data-seconds="300"
      aria-pressed="false">5 min</button><button type="button" data-seconds="600" aria-pressed="false">10 min</button>
  </span>
</header>
<main>
  <div id="totals" data-testid="totals"></div>

  <h2>Processes <small id="recent-note"></small></h2>
  <table data-testid="processes">
    <thead>
      <tr>
        <th class="text">PID</th><th>Priority</th><th class="text">Service</th><th class="text">GPU</th><th class="text">State</th>
        <th>Windows</th><th>P50 ms</th><th>P99 ms</th><th>Max ms</th><th title="GPU time measured on the device (P50)">GPU P50 ms</th>
        <th title="queue delay measured on the device: submitted to GPU start">Queue P50 ms</th><th>Queue P99 ms</th>
        <th>Holds</th><th>Held ms</th><th>Drops</th>
      </tr>
    </thead>
    <tbody id="process-rows"></tbody>
  </table>
  <div id="no-processes" class="empty" data-testid="no-processes" hidden>No process has the shim attached yet.</div>

  <h2>Request latency <small>P99 (solid) and P50 (dashed) of the windows that ended each second</small></h2>
  <div id="charts" data-testid="latency-charts"></div>

  <h2>Holds <small>when the scheduler held a process's launches, coloured by the process that caused the hold</small></h2>
  <div id="hold-legend" class="legend"></div>
  <div id="holds" data-testid="holds-timeline-panel"></div>
</main>
<script>
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#4d2d00", "#6e7781", "#9a6700"];
  const colours = new Map(); // pid → colour, in order of first appearance, stable while the page is open
  let rangeSeconds = 60;
  let goneShown = false; // gone processes are folded into one row, and their charts left out, until unfolded
  let last = null; // the last snapshot
  let lastOk = 0;

  const $ = (id) => document.getElementById(id);
  const colour = (pid) => {
    if (!colours.has(pid)) colours.set(pid, PALETTE[colours.size % PALETTE.length]);
    return colours.get(pid);
  };
  const fmtMs = (v) => (v === null || v === undefined ? "-" : v.toFixed(2));
  const fmtInt = (v) => Number(v).toLocaleString("en-US");
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  /** 1, 2, 5 × 10^n at or above v */
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * e >= v) return m * e;
    return 10 * e;
  }
  const label = (p) => p.pid + " " + p.service;

  function renderTotals(s) {
    const t = s.totals;
    const box = $("totals");
    box.replaceChildren();
    const item = (name, value, testid, bad) => {
      const span = el("span", { "data-testid": testid }, name + " ");
      if (bad) span.className = "bad";
      span.append(el("b", {}, value));
      box.append(span);
    };
    item("attached", fmtInt(t.processes), "total-processes");
    item("request windows", fmtInt(t.windows), "total-windows");
    item("holds", fmtInt(t.holds), "total-holds");
    item("launches", fmtInt(t.launches), "total-launches");
    item("records dropped", fmtInt(t.dropped), "drops-total", t.dropped > 0);
    item("spans exported", fmtInt(t.spans.exported), "total-spans");
    if (t.spans.dropped > 0) item("spans dropped", fmtInt(t.spans.dropped), "total-spans-dropped", true);
  }

  function renderProcesses(s) {
    $("recent-note").textContent = "P50/P99/max of the request windows of the last " + s.recentSeconds + " s; GPU time and queue delay measured on the device";
    const row = (p) => {
      const tr = el("tr", { "data-testid": "process", "data-pid": p.pid, "data-priority": p.priority, "data-state": p.state });
      if (p.state === "gone" || p.state === "corrupt") tr.className = p.state;
      const pidCell = el("td", { class: "text" });
      pidCell.append(el("span", { class: "swatch", style: "background:" + colour(p.pid) }), document.createTextNode(p.pid));
      tr.append(
        pidCell,
        el("td", { "data-testid": "priority" }, p.priority),
        el("td", { class: "text", "data-testid": "service", title: p.cmdline.join(" ") }, p.service),
        el("td", { class: "text", title: p.gpu ? p.gpu.uuid : "" }, p.gpu ? p.gpu.name : "-"),
        el("td", { class: "text", "data-testid": "state", title: p.corrupt || "" }, p.state),
        el("td", { "data-testid": "windows" }, fmtInt(p.windows)),
        el("td", { "data-testid": "p50" }, fmtMs(p.recent.p50)),
        el("td", { "data-testid": "p99" }, fmtMs(p.recent.p99)),
        el("td", { "data-testid": "max" }, fmtMs(p.recent.max)),
        el("td", { "data-testid": "gpu-p50" }, fmtMs(p.recent.gpuP50 ?? null)),
        el("td", { "data-testid": "queue-p50" }, fmtMs(p.recent.queueP50 ?? null)),
        el("td", { "data-testid": "queue-p99" }, fmtMs(p.recent.queueP99 ?? null)),
        el("td", { "data-testid": "holds" }, fmtInt(p.holds)),
        el("td", { "data-testid": "held" }, fmtMs(p.heldMs)),
        el("td", { "data-testid": "drops", class: p.dropped > 0 ? "bad" : "" }, fmtInt(p.dropped)),
      );
      return tr;
    };
    const gone = s.processes.filter((p) => p.state === "gone");
    const rows = s.processes.filter((p) => p.state !== "gone").map(row);
    if (gone.length > 0) {
      const summary = el("tr", { class: "gone-summary", "data-testid": "gone-summary" });
      const cell = el("td", { class: "text", colspan: "15" });
      const toggle = el("button", { type: "button", "aria-expanded": String(goneShown), "data-testid": "gone-toggle" },
        (goneShown ? "\u25BE " : "\u25B8 ") + gone.length + (gone.length === 1 ? " process" : " processes") +
        " gone (listed until the agent forgets them)" + (goneShown ? "" : ": show"));
      toggle.addEventListener("click", () => {
        goneShown = !goneShown;
        render();
      });
      cell.append(toggle);
      summary.append(cell);
      rows.push(summary);
      if (goneShown) rows.push(...gone.map(row));
    }
    $("process-rows").replaceChildren(...rows);
    $("no-processes").hidden = s.processes.length > 0;
  }

  /** P50/P99 over the range, one chart per process (gone ones only unfolded); a gap of more than 2 s without windows
   *  breaks the lines. */
  function renderCharts(s) {
    const box = $("charts");
    const width = Math.max(320, Math.floor((box.clientWidth || 900) / Math.max(1, Math.floor((box.clientWidth || 900) / 430)) - 24));
    const height = 150, left = 44, right = 8, top = 8, bottom = 20;
    const from = s.now - rangeSeconds * 1000;
    const x = (t) => left + ((t - from) / (rangeSeconds * 1000)) * (width - left - right);
    const figures = s.processes.filter((p) => goneShown || p.state !== "gone").map((p) => {
      const points = p.series.filter((pt) => pt.t >= from);
      const yMax = niceCeil(Math.max(0, ...points.map((pt) => pt.p99)));
      const y = (v) => top + (1 - v / yMax) * (height - top - bottom);
      const fig = el("figure", { "data-testid": "latency-chart", "data-pid": p.pid });
      const cap = el("figcaption", {});
      cap.append(el("span", { class: "swatch", style: "background:" + colour(p.pid) }), document.createTextNode(label(p) + " "),
        el("span", { class: "muted" }, "priority " + p.priority + (p.state === "gone" ? " · gone" : "")));
      const svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "request latency of " + label(p) });
      for (const v of [0, yMax / 2, yMax]) {
        svg.append(svgEl("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
        svg.append(svgEl("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end" }, (v >= 10 ? v.toFixed(0) : String(+v.toFixed(2))) + " ms"));
      }
      for (const [frac, text] of [[0, "-" + rangeSeconds + " s"], [0.5, "-" + rangeSeconds / 2 + " s"], [1, "now"]])
        svg.append(svgEl("text", { x: left + frac * (width - left - right), y: height - 5, "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" }, text));
      for (const [key, dash, testid] of [["p99", "", "p99-line"], ["p50", "4 3", "p50-line"]]) {
        let d = "";
        let prev = null;
        for (const pt of points) {
          d += (prev === null || pt.t - prev > 2000 ? "M" : "L") + x(pt.t + 500).toFixed(1) + " " + y(pt[key]).toFixed(1);
          prev = pt.t;
        }
        const path = svgEl("path", { d, fill: "none", stroke: colour(p.pid), "stroke-width": key === "p99" ? 2 : 1.5, "data-testid": testid });
        if (dash) path.setAttribute("stroke-dasharray", dash);
        svg.append(path);
      }
      if (points.length === 0) svg.append(svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no request window in this range"));
      fig.append(cap, svg);
      return fig;
    });
    box.replaceChildren(...figures);
    if (figures.length === 0)
      box.append(el("div", { class: "empty" }, s.processes.length === 0 ? "No process yet." : "Only gone processes: show them above."));
  }

  /** One lane per process that was held in the range; a bar per hold (at least 1 px wide), coloured by its cause. */
  function renderHolds(s) {
    const box = $("holds");
    const from = s.now - rangeSeconds * 1000;
    const holds = s.holds.filter((h) => h.end >= from);
    const byPid = new Map(s.processes.map((p) => [p.pid, p]));
    const lanes = [...new Set(holds.map((h) => h.pid))].sort((a, b) => (byPid.get(b)?.priority ?? 0) - (byPid.get(a)?.priority ?? 0) || a - b);
    const width = Math.max(320, (box.clientWidth || 900));
    const left = 150, right = 8, lane = 26, top = 4, bottom = 20;
    const height = top + Math.max(1, lanes.length) * lane + bottom;
    const x = (t) => left + ((t - from) / (rangeSeconds * 1000)) * (width - left - right);
    const svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "holds timeline", "data-testid": "holds-timeline", "data-holds": holds.length });
    for (const [frac, text] of [[0, "-" + rangeSeconds + " s"], [0.5, "-" + rangeSeconds / 2 + " s"], [1, "now"]]) {
      const gx = left + frac * (width - left - right);
      svg.append(svgEl("line", { class: "grid", x1: gx, x2: gx, y1: top, y2: height - bottom }));
      svg.append(svgEl("text", { x: gx, y: height - 5, "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" }, text));
    }
    lanes.forEach((pid, i) => {
      const p = byPid.get(pid);
      const y = top + i * lane;
      svg.append(svgEl("text", { x: 4, y: y + lane / 2 + 4 }, (p ? label(p) : String(pid)).slice(0, 22) + (p ? " (" + p.priority + ")" : "")));
      svg.append(svgEl("line", { class: "grid", x1: left, x2: width - right, y1: y + lane - 1, y2: y + lane - 1 }));
    });
    const causes = new Set();
    for (const h of holds) {
      const i = lanes.indexOf(h.pid);
      const x0 = x(Math.max(h.start, from));
      const bar = svgEl("rect", {
        x: x0.toFixed(2), y: top + i * lane + 4, width: Math.max(1, x(h.end) - x0).toFixed(2), height: lane - 9,
        fill: h.causePid === null ? "#8c959f" : colour(h.causePid), "data-testid": "hold", "data-pid": h.pid,
        "data-cause-pid": h.causePid === null ? "" : h.causePid, "data-reason": h.reason,
      });
      bar.append(svgEl("title", {}, "pid " + h.pid + " held " + (h.end - h.start).toFixed(2) + " ms (" + h.reason + ")" +
        (h.causePid === null ? "" : " by pid " + h.causePid) + ", released: " + h.releasedBy));
      svg.append(bar);
      causes.add(h.causePid);
    }
    if (holds.length === 0) svg.append(svgEl("text", { x: left + (width - left - right) / 2, y: top + lane / 2 + 4, "text-anchor": "middle" }, "no hold in this range"));
    box.replaceChildren(svg);
    const legend = $("hold-legend");
    legend.replaceChildren(...[...causes].map((pid) => {
      const p = pid === null ? null : byPid.get(pid);
      const item = el("span", {});
      item.append(el("span", { class: "swatch", style: "background:" + (pid === null ? "#8c959f" : colour(pid)) }),
        document.createTextNode(pid === null ? "no cause (window full)" : "caused by " + (p ? label(p) + " (" + p.priority + ")" : "pid " + pid)));
      return item;
    }));
  }

  function render() {
    if (!last) return;
    renderTotals(last);
    renderProcesses(last);
    renderCharts(last);
    renderHolds(last);
  }

  async function poll() {
    try {
      const res = await fetch("api/state", { cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      last = await res.json();
      lastOk = Date.now();
      const status = $("status");
      status.className = "ok";
      status.textContent = "live · " + new Date(last.now).toLocaleTimeString();
      render();
    } catch (e) {
      const status = $("status");
      status.className = "down";
      status.textContent = "agent unreachable (" + e.message + ")" + (lastOk ? " · last update " + new Date(lastOk).toLocaleTimeString() : "");
    } finally {
      setTimeout(poll, 1000);
    }
  }

  for (const b of document.querySelectorAll("#range button"))
    b.addEventListener("click", () => {
      rangeSeconds = Number(b.dataset.seconds);
      for (const o of document.querySelectorAll("#range button")) o.setAttribute("aria-pressed", String(o === b));
      render();
    });
  window.addEventListener("resize", render);
  poll();
})();
</script>
</body>
</html>
`;
