// Alerts panel. Hidden unless this bridge serves /api/alerts (the page's
// config says so), so nothing is probed and nothing fails when it does not.

import { AuthRequired, getJson } from "./api.js";
import { el, relative } from "./format.js";

const ALERTS_PATH = "/api/alerts";
const REFRESH = 15000;
const ORDER = { firing: 0, pending: 1, resolved: 2 };

function list(body) {
  if (Array.isArray(body)) return body;
  if (Array.isArray(body.alerts)) return body.alerts;
  const out = [];
  for (const state of Object.keys(ORDER)) for (const a of body[state] || []) out.push({ state, ...a });
  return out;
}

export class AlertsPanel {
  constructor(section, body, { available, onAuth }) {
    this.section = section;
    this.body = body;
    this.available = Boolean(available);
    this.onAuth = onAuth;
    this.timer = null;
  }

  start() {
    if (!this.available) return;
    this.section.hidden = false;
    const tick = async () => {
      try {
        this.render(list(await getJson(ALERTS_PATH)));
      } catch (error) {
        if (error instanceof AuthRequired) {
          this.onAuth();
          return;
        }
        this.body.replaceChildren(el("p", { class: "note" }, "Alerts are not available right now."));
      }
      this.timer = setTimeout(tick, REFRESH);
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
  }

  render(alerts) {
    if (alerts.length === 0) {
      this.body.replaceChildren(el("p", { class: "note" }, "✓ No alerts."));
      return;
    }
    const now = Date.now() / 1000;
    alerts.sort((a, b) => (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3));
    this.body.replaceChildren(
      el(
        "ul",
        { class: "alert-list" },
        alerts.map((a) => {
          const labels = a.labels || {};
          const kind = a.state === "firing" ? "bad" : a.state === "pending" ? "warn" : "ok";
          const icon = a.state === "firing" ? "✕" : a.state === "pending" ? "⚠" : "✓";
          const since = typeof a.active_since === "number" ? ` since ${relative(a.active_since, now)}` : "";
          return el(
            "li",
            { dataset: { state: a.state || "" } },
            el("span", { class: `flag ${kind}` }, `${icon} ${a.state}`),
            " ",
            el("strong", {}, labels.alertname || a.name || "alert"),
            labels.severity ? ` (${labels.severity})` : "",
            since,
            (a.annotations && a.annotations.summary) ? el("div", { class: "muted" }, a.annotations.summary) : null,
          );
        }),
      ),
    );
  }
}
