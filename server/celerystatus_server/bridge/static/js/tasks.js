// Active and scheduled tasks, long-running flags, and the search box.

import { AuthRequired, getJson } from "./api.js";
import { argsText, duration, el, relative } from "./format.js";

const SEARCH_PATH = "/api/celery-status/tasks";
const MAX_ROWS = 200;
// A task is long-running past 3 x its name's p95 and past this floor...
const LONG_FLOOR = 60;
// ...or, while its name has no baseline yet, past this.
const LONG_WITHOUT_BASELINE = 300;
const MIN_SAMPLES = 5;
const KEEP_SAMPLES = 200;

function p95(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(0.95 * (sorted.length - 1)))];
}

/** What "usual" means per task name: the trends API when served, else runtimes this page watched end. */
export class Runtimes {
  constructor() {
    this.running = new Map(); // id -> {name, start, lastSeen}
    this.samples = new Map(); // name -> [seconds]
    this.serverP95 = new Map(); // name -> seconds, from /trends
    this.serverLong = new Set(); // task ids the server flags
  }

  observe(snapshot, now) {
    if (!snapshot.connected || snapshot.stale) return;
    const seen = new Set();
    for (const tasks of Object.values((snapshot.queue_details || {}).active || {})) {
      for (const t of tasks) {
        seen.add(t.id);
        if (t.time_start) this.running.set(t.id, { name: t.name, start: t.time_start, lastSeen: now });
      }
    }
    for (const [id, r] of this.running) {
      if (seen.has(id)) continue;
      this.running.delete(id);
      const list = this.samples.get(r.name) || [];
      list.push(Math.max(0, r.lastSeen - r.start));
      if (list.length > KEEP_SAMPLES) list.shift();
      this.samples.set(r.name, list);
    }
  }

  fromTrends(trends) {
    this.serverP95.clear();
    this.serverLong.clear();
    for (const r of trends.runtimes || []) {
      const value = typeof r.p95 === "number" ? r.p95 : r.p95_seconds;
      if (r.name && typeof value === "number") this.serverP95.set(r.name, value);
    }
    for (const t of trends.long_running || []) {
      const id = t.id || t.task_id;
      if (id) this.serverLong.add(id);
    }
  }

  usual(name) {
    if (this.serverP95.has(name)) return this.serverP95.get(name);
    const list = this.samples.get(name);
    return list && list.length >= MIN_SAMPLES ? p95(list) : null;
  }

  /** null, or a short reason the task counts as long-running. */
  longRunning(task, runtime) {
    if (runtime === null) return null;
    if (this.serverLong.has(task.id)) return "long-running";
    const usual = this.usual(task.name);
    if (usual === null) return runtime > LONG_WITHOUT_BASELINE ? `running over ${duration(LONG_WITHOUT_BASELINE)}` : null;
    return runtime > Math.max(3 * usual, LONG_FLOOR) ? `long-running (usual p95 ${duration(usual)})` : null;
  }
}

function flatten(details, state) {
  const out = [];
  for (const [worker, tasks] of Object.entries(details || {})) {
    for (const t of tasks) out.push({ ...t, worker, state });
  }
  return out;
}

function runtimeOf(task, now) {
  return task.time_start ? Math.max(0, now - task.time_start) : null;
}

function taskCells(task, now, runtimes, { withState = false } = {}) {
  const runtime = runtimeOf(task, now);
  const flag = task.state === "active" ? runtimes.longRunning(task, runtime) : null;
  const cells = [
    el("td", { class: "mono" }, task.name),
    el("td", { class: "mono optional", title: task.id }, task.id.slice(0, 8)),
  ];
  if (withState) cells.push(el("td", {}, task.state || "–"));
  cells.push(el("td", { class: "mono" }, task.worker || "–"));
  if (task.state === "active" || withState) {
    cells.push(
      el(
        "td",
        { class: "num runtime" },
        runtime === null ? "–" : duration(runtime),
        flag ? el("span", { class: "flag warn", title: flag }, ` ⚠ ${flag}`) : null,
      ),
    );
  }
  if (task.state !== "active" || withState) cells.push(el("td", {}, task.eta ? relative(task.eta, now) : "–"));
  cells.push(el("td", { class: "wrap mono" }, argsText(task)));
  return { cells, flag, runtime };
}

function head(labels) {
  return el("tr", {}, labels.map(([label, cls]) => el("th", { scope: "col", class: cls || null }, label)));
}

export class TasksView {
  constructor({ active, scheduled, activeCount, scheduledCount, results, form, input, clear, onAuth }) {
    this.active = active;
    this.scheduled = scheduled;
    this.activeCount = activeCount;
    this.scheduledCount = scheduledCount;
    this.results = results;
    this.input = input;
    this.clear = clear;
    this.onAuth = onAuth;
    this.runtimes = new Runtimes();
    this.snapshot = null;
    this.found = null; // {query, tasks}
    this.searchSeq = 0;
    active.tHead.replaceChildren(head([["Task"], ["Id", "optional"], ["Worker"], ["Runtime", "num"], ["Arguments"]]));
    scheduled.tHead.replaceChildren(head([["Task"], ["Id", "optional"], ["Worker"], ["ETA"], ["Arguments"]]));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(input.value.trim());
    });
    clear.addEventListener("click", () => {
      input.value = "";
      this.search("");
      input.focus();
    });
  }

  update(snapshot, now) {
    this.snapshot = snapshot;
    this.runtimes.observe(snapshot, now);
    this.render(now);
  }

  render(now) {
    if (!this.snapshot) return;
    const details = this.snapshot.queue_details || {};
    const active = flatten(details.active, "active").sort((a, b) => (a.time_start || 0) - (b.time_start || 0));
    const scheduled = flatten(details.scheduled, "scheduled").sort((a, b) => (a.eta || 0) - (b.eta || 0));
    this.activeCount.textContent = `(${active.length})`;
    this.scheduledCount.textContent = `(${scheduled.length})`;
    this.fill(this.active, active, now, "No active tasks");
    this.fill(this.scheduled, scheduled, now, "No scheduled tasks");
    if (this.found) this.renderResults(now);
  }

  fill(table, tasks, now, emptyText) {
    const body = table.tBodies[0];
    const columns = table.tHead.rows[0].cells.length;
    if (tasks.length === 0) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText)));
      return;
    }
    const rows = tasks.slice(0, MAX_ROWS).map((task) => {
      const { cells, flag } = taskCells(task, now, this.runtimes);
      return el("tr", { class: flag ? "long" : null, dataset: { taskId: task.id, long: flag ? "true" : "false" } }, cells);
    });
    if (tasks.length > MAX_ROWS) {
      rows.push(el("tr", { class: "empty" }, el("td", { colspan: columns }, `… and ${tasks.length - MAX_ROWS} more: use the search`)));
    }
    body.replaceChildren(...rows);
  }

  /** One box for everything: the query is tried as task id, eval id, any argument and task name. */
  async search(query) {
    const seq = ++this.searchSeq;
    this.clear.hidden = !query;
    if (!query) {
      this.found = null;
      this.results.hidden = true;
      this.results.replaceChildren();
      return;
    }
    this.results.hidden = false;
    this.results.replaceChildren(el("p", {}, `Searching for “${query}”…`));
    const kinds = ["task_id", "eval_id", "arg", "task_name"];
    const answers = await Promise.allSettled(kinds.map((kind) => getJson(SEARCH_PATH, { params: { [kind]: query } })));
    if (seq !== this.searchSeq) return;
    if (answers.some((a) => a.status === "rejected" && a.reason instanceof AuthRequired)) {
      this.onAuth();
      return;
    }
    const byId = new Map();
    let failed = 0;
    for (const answer of answers) {
      if (answer.status !== "fulfilled") {
        failed += 1;
        continue;
      }
      for (const task of answer.value.tasks || []) if (!byId.has(task.id)) byId.set(task.id, task);
    }
    this.found = { query, tasks: [...byId.values()], failed };
    this.renderResults(Date.now() / 1000);
  }

  renderResults(now) {
    const { query, tasks, failed } = this.found;
    const caption = `${tasks.length} task${tasks.length === 1 ? "" : "s"} matching “${query}”`;
    const nodes = [el("p", { id: "search-caption" }, caption, failed === 4 ? " (search failed)" : null)];
    if (tasks.length) {
      const table = el(
        "table",
        { class: "data", id: "search-table", "aria-describedby": "search-caption" },
        el("thead", {}, head([["Task"], ["Id", "optional"], ["State"], ["Worker"], ["Runtime", "num"], ["ETA"], ["Arguments"]])),
        el(
          "tbody",
          {},
          tasks.map((task) => {
            const { cells, flag } = taskCells(task, now, this.runtimes, { withState: true });
            return el("tr", { class: flag ? "long" : null, dataset: { taskId: task.id } }, cells);
          }),
        ),
      );
      nodes.push(el("div", { class: "table-wrap" }, table));
    }
    this.results.replaceChildren(...nodes);
  }
}
