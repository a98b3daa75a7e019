// Chart data: the history API when this bridge serves it, otherwise what the
// page itself has seen since it was opened.

import { ApiError, AuthRequired, getJson } from "./api.js";

const HISTORY_PATH = "/api/celery-status/history";
export const RANGES = {
  "1h": { since: "1h", step: "1m", seconds: 3600 },
  "24h": { since: "24h", step: "10m", seconds: 86400 },
  "7d": { since: "7d", step: "1h", seconds: 7 * 86400 },
};
const SERIES = ["workers", "active_tasks", "reserved_tasks", "scheduled_tasks", "total", "queue:*"];
const LOCAL_KEEP = 3600;

/** Cluster figures of one snapshot, as the cards and charts use them. */
export function figures(snapshot) {
  const queues = snapshot.queues || {};
  let waiting = 0;
  for (const q of Object.values(queues)) waiting += q.messages || 0;
  let total = 0;
  for (const w of Object.values(snapshot.worker_stats || {})) total += w.total || 0;
  return {
    workers: snapshot.workers || 0,
    active: snapshot.active_tasks || 0,
    reserved: snapshot.reserved_tasks || 0,
    scheduled: snapshot.scheduled_tasks || 0,
    waiting,
    total,
  };
}

/** Tasks completed per second, from per-worker ``total`` counters; a restart counts as a counter reset. */
export class ThroughputMeter {
  constructor(windowSeconds = 60) {
    this.window = windowSeconds;
    this.last = new Map(); // worker -> total
    this.events = []; // [t, worker, delta]
    this.firstSeen = null;
  }

  update(snapshot, t) {
    if (!snapshot.connected || snapshot.stale) return;
    if (this.firstSeen === null) this.firstSeen = t;
    for (const [name, stats] of Object.entries(snapshot.worker_stats || {})) {
      const total = stats.total || 0;
      const previous = this.last.get(name);
      if (previous !== undefined) {
        const delta = total >= previous ? total - previous : total;
        if (delta > 0) this.events.push([t, name, delta]);
      }
      this.last.set(name, total);
    }
    const cutoff = t - this.window;
    while (this.events.length && this.events[0][0] < cutoff) this.events.shift();
  }

  /** Per second over the window (or the time observed, when shorter); null until two snapshots were seen. */
  rate(t, worker = null) {
    if (this.firstSeen === null || t - this.firstSeen < 1) return null;
    const span = Math.min(this.window, t - this.firstSeen);
    let sum = 0;
    for (const [, name, delta] of this.events) if (worker === null || name === worker) sum += delta;
    return sum / span;
  }
}

/** Figures the page saw since it was opened, for charts when there is no history API. */
export class LocalRecorder {
  constructor() {
    this.times = [];
    this.rows = [];
  }

  add(t, row) {
    this.times.push(t);
    this.rows.push(row);
    while (this.times.length && this.times[0] < t - LOCAL_KEEP) {
      this.times.shift();
      this.rows.shift();
    }
  }

  series() {
    const pick = (key) => this.rows.map((r) => r[key]);
    return {
      times: this.times.slice(),
      values: {
        workers: pick("workers"),
        active: pick("active"),
        reserved: pick("reserved"),
        scheduled: pick("scheduled"),
        waiting: pick("waiting"),
        throughput: pick("throughput"),
      },
    };
  }
}

function columns(body) {
  const series = {};
  if (Array.isArray(body.series)) {
    for (const s of body.series) series[s.name] = s.values;
  } else if (body.series && typeof body.series === "object") {
    Object.assign(series, body.series);
  }
  return { times: body.timestamps || [], series };
}

const asNumber = (v) => (v === null || v === undefined || Number.isNaN(Number(v)) ? null : Number(v));

/** Turns the history API's columns into the cards' series. */
export function cardSeries({ times, series }) {
  const col = (name) => (series[name] || times.map(() => null)).map(asNumber);
  const queueNames = Object.keys(series).filter((n) => n.startsWith("queue:"));
  const waiting = times.map((_, i) => {
    let sum = null;
    for (const n of queueNames) {
      const v = asNumber(series[n][i]);
      if (v !== null) sum = (sum || 0) + v;
    }
    return sum;
  });
  const total = col("total");
  const throughput = total.map((v, i) => {
    if (i === 0 || v === null || total[i - 1] === null) return null;
    const dt = times[i] - times[i - 1];
    const delta = v >= total[i - 1] ? v - total[i - 1] : v;
    return dt > 0 ? delta / dt : null;
  });
  return {
    times,
    values: {
      workers: col("workers"),
      active: col("active_tasks"),
      reserved: col("reserved_tasks"),
      scheduled: col("scheduled_tasks"),
      waiting,
      throughput,
    },
  };
}

/** The history API, asked only when the bridge says it serves it; one failure turns it off quietly. */
export class HistorySource {
  constructor(available) {
    this.available = Boolean(available);
    this.reason = available ? null : "History is not available on this server: charts show what this page has seen since it was opened.";
  }

  /** The server said it keeps no history (its status reads history.state "off"): never ask. */
  disable(reason) {
    this.available = false;
    this.reason = reason;
  }

  async load(rangeName) {
    if (!this.available) return null;
    const range = RANGES[rangeName] || RANGES["1h"];
    try {
      const body = await getJson(HISTORY_PATH, {
        params: { since: range.since, until: "now", step: range.step, series: SERIES.join(",") },
      });
      return cardSeries(columns(body));
    } catch (error) {
      if (error instanceof AuthRequired) throw error;
      // 404/503 (not served, turned off, store down): say so once and stop asking.
      this.available = false;
      const detail = error instanceof ApiError && error.body && error.body.error ? ` (${error.body.error})` : "";
      this.reason = `History is not available${detail}: charts show what this page has seen since it was opened.`;
      return null;
    }
  }
}
