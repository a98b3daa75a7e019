// Overview cards: live numbers from the snapshot, and a small chart each.

import { sparkline } from "./chart.js";
import { el, number } from "./format.js";

const CARDS = [
  { key: "workers", label: "Workers" },
  { key: "active", label: "Active tasks" },
  { key: "reserved", label: "Reserved" },
  { key: "scheduled", label: "Scheduled" },
  { key: "waiting", label: "Waiting in broker" },
  { key: "throughput", label: "Throughput", unit: "/min" },
];

export class Overview {
  constructor(container) {
    this.container = container;
    this.cards = new Map();
    for (const card of CARDS) {
      const value = el("div", { class: "card-value", dataset: { value: card.key } }, "–");
      const detail = el("div", { class: "card-detail" });
      const chart = el("div", { class: "card-chart" });
      const node = el(
        "article",
        { class: "card", dataset: { metric: card.key }, "aria-labelledby": `card-${card.key}` },
        el("div", { class: "card-label", id: `card-${card.key}` }, card.label),
        value,
        detail,
        chart,
      );
      container.append(node);
      this.cards.set(card.key, { ...card, value, detail, chart });
    }
  }

  /** figures: from history.figures() plus throughput (per second, or null). */
  update(figures, snapshot) {
    for (const [key, card] of this.cards) {
      let value = figures[key];
      if (key === "throughput") value = value === null || value === undefined ? null : value * 60;
      const text = value === null || value === undefined ? "–" : number(value, key === "throughput" ? 1 : 0);
      card.value.textContent = card.unit && value !== null && value !== undefined ? `${text}${card.unit}` : text;
    }
    const queues = Object.entries(snapshot.queues || {});
    this.cards.get("waiting").detail.textContent = queues.length
      ? queues.map(([name, q]) => `${name} ${number(q.messages)}`).join(" · ")
      : "no queues known";
    const pools = Object.values(snapshot.worker_stats || {});
    const slots = pools.reduce((n, w) => n + ((w.pool && w.pool["max-concurrency"]) || 0), 0);
    this.cards.get("active").detail.textContent = slots ? `${number(figures.active)} of ${number(slots)} pool slots` : "";
    this.cards.get("workers").detail.textContent = snapshot.connected ? "" : "broker down: last known";
  }

  /** data: {times, values{key: [...]}}; `source` names where it came from, for the text alternative. */
  charts(data, source) {
    for (const [key, card] of this.cards) {
      let values = data ? data.values[key] || [] : [];
      // Rates are per second in the data and per minute on screen, like the card's number.
      if (key === "throughput") values = values.map((v) => (v === null || v === undefined ? v : v * 60));
      card.chart.replaceChildren(sparkline(data ? data.times : [], values, { label: `${card.label} (${source})` }));
    }
  }
}
