// A small SVG area chart: one series, gaps where values are missing.

import { number, svgEl } from "./format.js";

const WIDTH = 200;
const HEIGHT = 42;
const PAD = 2;

/**
 * sparkline(times, values, {label}) -> <svg>. times in epoch seconds, values may hold null/NaN (gaps).
 * The SVG carries a text alternative (role="img" + aria-label) with range and last value.
 */
export function sparkline(times, values, { label = "" } = {}) {
  const svg = svgEl("svg", { class: "spark", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img" });
  const points = [];
  for (let i = 0; i < times.length; i++) {
    const v = values[i];
    points.push(v === null || v === undefined || Number.isNaN(v) ? null : [times[i], Number(v)]);
  }
  const present = points.filter((p) => p !== null);
  if (present.length < 2) {
    svg.setAttribute("aria-label", `${label}: not enough data yet`);
    const text = svgEl("text", { x: 4, y: HEIGHT / 2 + 3 });
    text.textContent = "collecting data…";
    svg.append(text);
    return svg;
  }
  const t0 = times[0];
  const t1 = times[times.length - 1];
  const max = Math.max(...present.map((p) => p[1]));
  // A flat line of zeros sits on the bottom rather than in the middle.
  const scale = Math.max(1, max);
  const x = (t) => (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * WIDTH);
  const y = (v) => HEIGHT - PAD - (v / scale) * (HEIGHT - 2 * PAD);
  let line = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (run.length === 0) return;
    const d = run.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    line += d;
    area += `${d}L${x(run[run.length - 1][0]).toFixed(1)},${HEIGHT}L${x(run[0][0]).toFixed(1)},${HEIGHT}Z`;
    run = [];
  };
  for (const p of points) {
    if (p === null) flush();
    else run.push(p);
  }
  flush();
  svg.append(svgEl("path", { class: "area", d: area }), svgEl("path", { class: "line", d: line }));
  const last = present[present.length - 1][1];
  const min = Math.min(...present.map((p) => p[1]));
  svg.setAttribute("aria-label", `${label}: from ${number(min, 1)} to ${number(max, 1)}, now ${number(last, 1)}`);
  const title = svgEl("title");
  title.textContent = `min ${number(min, 1)} · max ${number(max, 1)} · last ${number(last, 1)}`;
  svg.prepend(title);
  return svg;
}
