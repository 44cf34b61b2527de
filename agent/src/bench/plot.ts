// The bench's plots as one scene (lines, points, rectangles, text) written as SVG, and the PNG rendered from that SVG
// by resvg, so both files show the same thing. Charts: latency CDFs per mode, and a timeline of high-priority latency
// with the low-priority worker's holds.
import { createRequire } from "node:module";

export type Color = readonly [number, number, number];

export type Shape =
  | { kind: "line"; points: [number, number][]; color: Color; width: number; series?: string }
  | { kind: "circle"; x: number; y: number; r: number; color: Color; series?: string }
  | { kind: "rect"; x: number; y: number; w: number; h: number; color: Color; opacity: number; series?: string }
  | { kind: "text"; x: number; y: number; text: string; size: number; color: Color; anchor: "start" | "middle" | "end" };

export interface Scene {
  width: number;
  height: number;
  title: string;
  shapes: Shape[];
}

export const COLORS: Record<string, Color> = {
  "high-alone": [90, 90, 90],
  native: [214, 39, 40],
  telemetry: [148, 103, 189],
  tailguard: [31, 119, 180],
  holds: [255, 127, 14],
  axis: [40, 40, 40],
  grid: [225, 225, 225],
};

/** The font the plots' text is set in: DejaVu Sans, from the dejavu-fonts-ttf package (the TTFs of the DejaVu
 *  project, free licence), so that a PNG has its text on a machine without system fonts (a slim container, CI). */
export const FONT_FAMILY = "DejaVu Sans";

// ---- SVG ------------------------------------------------------------------------------------------------------

const css = (c: Color) => `rgb(${c[0]},${c[1]},${c[2]})`;
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const n = (x: number) => (Math.round(x * 10) / 10).toString();

export function toSvg(scene: Scene): string {
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}" font-family="${FONT_FAMILY}, sans-serif">`,
    `<title>${esc(scene.title)}</title>`,
    `<rect x="0" y="0" width="${scene.width}" height="${scene.height}" fill="white"/>`,
  ];
  const tag = (s: { series?: string }) => (s.series ? ` data-series="${esc(s.series)}"` : "");
  for (const s of scene.shapes) {
    switch (s.kind) {
      case "line":
        out.push(`<polyline${tag(s)} fill="none" stroke="${css(s.color)}" stroke-width="${s.width}" points="${s.points.map(([x, y]) => `${n(x)},${n(y)}`).join(" ")}"/>`);
        break;
      case "circle":
        out.push(`<circle${tag(s)} cx="${n(s.x)}" cy="${n(s.y)}" r="${s.r}" fill="${css(s.color)}"/>`);
        break;
      case "rect":
        out.push(`<rect${tag(s)} x="${n(s.x)}" y="${n(s.y)}" width="${n(Math.max(s.w, 0.5))}" height="${n(s.h)}" fill="${css(s.color)}" fill-opacity="${s.opacity}"/>`);
        break;
      case "text":
        out.push(`<text x="${n(s.x)}" y="${n(s.y)}" font-size="${s.size}" fill="${css(s.color)}" text-anchor="${s.anchor}">${esc(s.text)}</text>`);
        break;
    }
  }
  out.push("</svg>", "");
  return out.join("\n");
}

// ---- PNG ------------------------------------------------------------------------------------------------------

type Renderer = (svg: string) => Buffer;
let renderer: Renderer | { error: string } | undefined;

/** resvg (its prebuilt binary for this platform) with the shipped font, loaded once, at the first plot. */
function loadRenderer(): Renderer | { error: string } {
  const require = createRequire(import.meta.url);
  let font: string;
  try {
    font = require.resolve("dejavu-fonts-ttf/ttf/DejaVuSans.ttf");
  } catch {
    return { error: "the font package dejavu-fonts-ttf is not installed (run npm ci)" };
  }
  try {
    const { Resvg } = require("@resvg/resvg-js") as typeof import("@resvg/resvg-js");
    const options = { font: { loadSystemFonts: false, fontFiles: [font], defaultFontFamily: FONT_FAMILY, sansSerifFamily: FONT_FAMILY } };
    return (svg: string) => new Resvg(svg, options).render().asPng();
  } catch (err) {
    return { error: `resvg cannot load on ${process.platform}-${process.arch}: ${(err as Error).message.split("\n")[0]}` };
  }
}

/** The PNG of an SVG drawn by toSvg, rendered by resvg; or why not (no resvg binary for this platform, a render that
 *  failed): a plot never fails the bench. */
export function renderPng(svg: string): { png: Buffer } | { error: string } {
  renderer ??= loadRenderer();
  if (typeof renderer !== "function") return renderer;
  try {
    return { png: renderer(svg) };
  } catch (err) {
    return { error: `resvg could not render the plot: ${(err as Error).message.split("\n")[0]}` };
  }
}

// ---- charts ---------------------------------------------------------------------------------------------------

interface Axis {
  min: number;
  max: number;
  log: boolean;
}

const W = 900, H = 560;
const PLOT = { left: 80, right: 190, top: 64, bottom: 70 };

function scale(a: Axis, from: number, to: number) {
  const f = (v: number) => (a.log ? Math.log10(v) : v);
  const lo = f(a.min), hi = f(a.max);
  return (v: number) => from + ((f(Math.min(Math.max(v, a.min), a.max)) - lo) / (hi - lo || 1)) * (to - from);
}

function ticks(a: Axis): number[] {
  if (a.log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(a.min)); e <= Math.ceil(Math.log10(a.max)); e++)
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= a.min * 0.999 && v <= a.max * 1.001) out.push(v);
      }
    return out;
  }
  const raw = (a.max - a.min) / 6;
  const step = [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw || 1))).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(a.min / step) * step; v <= a.max + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

const label = (v: number) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : String(+v.toPrecision(2)));

function frame(scene: Scene, x: Axis, y: Axis, xTitle: string, yTitle: string, bottom = PLOT.bottom) {
  const sx = scale(x, PLOT.left, W - PLOT.right), sy = scale(y, H - bottom, PLOT.top);
  const axis = COLORS.axis, grid = COLORS.grid;
  for (const t of ticks(x)) {
    scene.shapes.push({ kind: "line", points: [[sx(t), PLOT.top], [sx(t), H - bottom]], color: grid, width: 1 });
    scene.shapes.push({ kind: "text", x: sx(t), y: H - bottom + 18, text: label(t), size: 12, color: axis, anchor: "middle" });
  }
  for (const t of ticks(y)) {
    scene.shapes.push({ kind: "line", points: [[PLOT.left, sy(t)], [W - PLOT.right, sy(t)]], color: grid, width: 1 });
    scene.shapes.push({ kind: "text", x: PLOT.left - 6, y: sy(t) + 4, text: label(t), size: 12, color: axis, anchor: "end" });
  }
  scene.shapes.push({ kind: "line", points: [[PLOT.left, PLOT.top], [PLOT.left, H - bottom], [W - PLOT.right, H - bottom]], color: axis, width: 1 });
  scene.shapes.push({ kind: "text", x: (PLOT.left + W - PLOT.right) / 2, y: H - 20, text: xTitle, size: 13, color: axis, anchor: "middle" });
  scene.shapes.push({ kind: "text", x: 10, y: PLOT.top - 12, text: yTitle, size: 13, color: axis, anchor: "start" });
  scene.shapes.push({ kind: "text", x: W / 2, y: 24, text: scene.title, size: 16, color: axis, anchor: "middle" });
  return { sx, sy };
}

function legend(scene: Scene, entries: { name: string; color: Color }[]) {
  entries.forEach((e, i) => {
    const y = PLOT.top + 10 + i * 22;
    scene.shapes.push({ kind: "rect", x: W - PLOT.right + 16, y: y - 8, w: 14, h: 10, color: e.color, opacity: 1 });
    scene.shapes.push({ kind: "text", x: W - PLOT.right + 36, y: y + 2, text: e.name, size: 12, color: COLORS.axis, anchor: "start" });
  });
}

export interface Series {
  name: string;
  color: Color;
  values: number[];
}

/** Empirical CDFs of latency (ms, log scale) per mode. */
export function cdfChart(title: string, series: Series[]): Scene {
  const scene: Scene = { width: W, height: H, title, shapes: [] };
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const x: Axis = { min: Math.min(...all) * 0.9, max: Math.max(...all) * 1.1, log: true };
  const { sx, sy } = frame(scene, x, { min: 0, max: 1, log: false }, "latency from scheduled arrival (ms, log scale)", "fraction of requests");
  for (const s of series) {
    const v = s.values.filter((t) => t > 0).sort((a, b) => a - b);
    const pts: [number, number][] = [];
    v.forEach((t, i) => {
      pts.push([sx(t), sy(i / v.length)]);
      pts.push([sx(t), sy((i + 1) / v.length)]);
    });
    scene.shapes.push({ kind: "line", points: pts, color: s.color, width: 2, series: s.name });
  }
  legend(scene, series);
  return scene;
}

/** High-priority latency per request over the run (points per mode), with the low-priority worker's holds as a strip
 *  of bars under the plot. */
export function timelineChart(title: string, series: { name: string; color: Color; points: [number, number][] }[],
  holds: { atMs: number; durMs: number }[], durationS: number): Scene {
  const scene: Scene = { width: W, height: H, title, shapes: [] };
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const y: Axis = { min: Math.min(...ys) * 0.9, max: Math.max(...ys) * 1.1, log: true };
  const x: Axis = { min: 0, max: durationS, log: false };
  const bottom = PLOT.bottom + 40;
  const { sx, sy } = frame(scene, x, y, "time since the start of the schedule (s)", "latency (ms, log scale)", bottom);
  const strip = { top: H - bottom + 28, h: 16 };
  for (const s of series)
    for (const [t, v] of s.points) scene.shapes.push({ kind: "circle", x: sx(t / 1000), y: sy(v), r: 2.5, color: s.color, series: s.name });
  scene.shapes.push({ kind: "rect", x: PLOT.left, y: strip.top, w: W - PLOT.right - PLOT.left, h: strip.h, color: COLORS.grid, opacity: 0.6 });
  for (const h of holds) {
    const x0 = sx(Math.max(0, h.atMs) / 1000), x1 = sx((h.atMs + h.durMs) / 1000);
    scene.shapes.push({ kind: "rect", x: x0, y: strip.top, w: Math.max(1, x1 - x0), h: strip.h, color: COLORS.holds, opacity: 0.85, series: "holds" });
  }
  scene.shapes.push({ kind: "text", x: PLOT.left - 6, y: strip.top + 12, text: "holds", size: 12, color: COLORS.axis, anchor: "end" });
  legend(scene, [...series, { name: `low held (${holds.length})`, color: COLORS.holds }]);
  return scene;
}
