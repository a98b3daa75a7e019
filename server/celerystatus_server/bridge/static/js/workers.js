// The workers table: sortable, crashed pool processes highlighted, and a worker
// that disappears kept as "gone" for a while instead of silently removed.

import { duration, el, number, relative } from "./format.js";

const GONE_KEEP = 15 * 60;

const COLUMNS = [
  { key: "name", label: "Worker", sort: (w) => w.name },
  { key: "state", label: "State", sort: (w) => (w.gone ? 1 : 0) },
  { key: "pool", label: "Pool processes", num: true, sort: (w) => w.processes - w.concurrency },
  { key: "active", label: "Active", num: true, sort: (w) => w.active },
  { key: "reserved", label: "Reserved", num: true, sort: (w) => w.reserved },
  { key: "scheduled", label: "Scheduled", num: true, sort: (w) => w.scheduled },
  { key: "total", label: "Total", num: true, sort: (w) => w.total },
  { key: "throughput", label: "Tasks/min", num: true, sort: (w) => w.throughput ?? -1 },
  { key: "uptime", label: "Uptime", num: true, optional: true, sort: (w) => w.uptime ?? -1 },
  { key: "heartbeat", label: "Last heartbeat", optional: true, sort: (w) => w.heartbeat ?? 0 },
  { key: "kind", label: "Inspection", optional: true, sort: (w) => w.kind },
];

function countTasks(details, name) {
  return (details && details[name] && details[name].length) || 0;
}

export class WorkersTable {
  constructor(table, summary) {
    this.table = table;
    this.summary = summary;
    this.known = new Map(); // name -> row model
    this.sortKey = "name";
    this.descending = false;
    this.renderHead();
  }

  renderHead() {
    const row = this.table.tHead.rows[0];
    row.replaceChildren(
      ...COLUMNS.map((col) => {
        const th = el(
          "th",
          { scope: "col", class: [col.num ? "num" : "", col.optional ? "optional" : ""].join(" ").trim() || null },
          el("button", { type: "button", onclick: () => this.sortBy(col.key) }, col.label),
        );
        if (col.key === this.sortKey) th.setAttribute("aria-sort", this.descending ? "descending" : "ascending");
        return th;
      }),
    );
  }

  sortBy(key) {
    if (this.sortKey === key) this.descending = !this.descending;
    else {
      this.sortKey = key;
      this.descending = false;
    }
    this.renderHead();
    this.render();
    // Keep keyboard focus on the header that was activated.
    const index = COLUMNS.findIndex((c) => c.key === key);
    this.table.tHead.rows[0].cells[index].querySelector("button").focus();
  }

  /** Called with every snapshot; `now` in epoch seconds, `meter` a ThroughputMeter. */
  update(snapshot, now, meter) {
    const trusted = snapshot.connected && !snapshot.stale && snapshot.enabled !== false;
    const stats = snapshot.worker_stats || {};
    const details = snapshot.queue_details || {};
    for (const [name, s] of Object.entries(stats)) {
      const pool = s.pool || {};
      this.known.set(name, {
        name,
        gone: false,
        goneSince: null,
        processes: (pool.processes || []).length,
        concurrency: pool["max-concurrency"] || 0,
        implementation: pool.implementation || "",
        active: s.active_tasks ?? countTasks(details.active, name),
        reserved: s.reserved_tasks ?? countTasks(details.reserved, name),
        scheduled: s.scheduled_tasks ?? countTasks(details.scheduled, name),
        total: s.total || 0,
        throughput: meter.rate(now, name),
        uptime: s.uptime ?? null,
        heartbeat: s.last_heartbeat ?? null,
        kind: s.extension ? "extension" : "stock",
      });
    }
    // Only a trustworthy snapshot can say a worker is gone; a broker outage says nothing about workers.
    if (trusted) {
      for (const [name, w] of this.known) {
        if (name in stats) continue;
        if (!w.gone) {
          w.gone = true;
          w.goneSince = now;
          w.active = w.reserved = w.scheduled = 0;
          w.throughput = null;
        } else if (now - w.goneSince > GONE_KEEP) {
          this.known.delete(name);
        }
      }
    }
    this.now = now;
    this.render();
  }

  render() {
    const col = COLUMNS.find((c) => c.key === this.sortKey) || COLUMNS[0];
    const rows = [...this.known.values()].sort((a, b) => {
      const x = col.sort(a);
      const y = col.sort(b);
      const order = x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name);
      return this.descending ? -order : order;
    });
    const body = this.table.tBodies[0];
    if (rows.length === 0) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: COLUMNS.length }, "No workers")));
    } else {
      body.replaceChildren(...rows.map((w) => this.row(w)));
    }
    const up = rows.filter((w) => !w.gone).length;
    const gone = rows.length - up;
    this.summary.textContent = `${up} up${gone ? `, ${gone} gone` : ""}`;
  }

  row(w) {
    const missing = w.concurrency - w.processes;
    const crashed = !w.gone && w.concurrency > 0 && missing > 0;
    const cells = {
      name: el("th", { scope: "row", class: "mono" }, w.name),
      state: el(
        "td",
        { class: "state" },
        w.gone
          ? el("span", { class: "flag muted" }, `✕ gone ${relative(w.goneSince, this.now)}`)
          : el("span", { class: "flag ok" }, "✓ up"),
      ),
      pool: el(
        "td",
        { class: crashed ? "num crashed" : "num", title: w.implementation },
        `${w.processes} / ${w.concurrency}`,
        crashed ? ` ⚠ ${missing} crashed` : null,
      ),
      active: el("td", { class: "num" }, number(w.active)),
      reserved: el("td", { class: "num" }, number(w.reserved)),
      scheduled: el("td", { class: "num" }, number(w.scheduled)),
      total: el("td", { class: "num" }, number(w.total)),
      throughput: el("td", { class: "num" }, w.throughput === null ? "–" : number(w.throughput * 60, 1)),
      uptime: el("td", { class: "num optional" }, duration(w.uptime)),
      heartbeat: el("td", { class: "optional" }, w.heartbeat ? relative(w.heartbeat, this.now) : "–"),
      kind: el("td", { class: "optional" }, w.kind),
    };
    return el(
      "tr",
      { dataset: { worker: w.name, state: w.gone ? "gone" : "up", crashed: crashed ? "true" : "false" } },
      COLUMNS.map((c) => cells[c.key]),
    );
  }
}
