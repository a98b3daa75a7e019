// Small, pure helpers: DOM building and human-readable numbers and times.

/** el("td", {class: "num"}, "3") — children may be strings, nodes or arrays; null/undefined are skipped. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

export function svgEl(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** 75 -> "1m 15s", 4000 -> "1h 6m", 200000 -> "2d 7h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function clockTime(epochSeconds) {
  if (!epochSeconds) return "–";
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

export function dateTime(epochSeconds) {
  if (!epochSeconds) return "–";
  return new Date(epochSeconds * 1000).toLocaleString();
}

/** "in 12s" / "3s ago" relative to now (epoch seconds). */
export function relative(epochSeconds, now) {
  if (!epochSeconds) return "–";
  const delta = epochSeconds - now;
  return delta >= 0 ? `in ${duration(delta)}` : `${duration(-delta)} ago`;
}

export function nowSeconds() {
  return Date.now() / 1000;
}

/** Arguments as one short line; withheld ones are said to be withheld. */
export function argsText(task) {
  const parts = [];
  for (const a of task.args || []) parts.push(typeof a === "string" ? a : JSON.stringify(a));
  for (const [k, v] of Object.entries(task.kwargs || {})) parts.push(`${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  let text = parts.join(", ");
  if (text.length > 160) text = `${text.slice(0, 157)}…`;
  if (task.args_redacted) text = text ? `${text} (others withheld)` : "withheld";
  return text;
}
