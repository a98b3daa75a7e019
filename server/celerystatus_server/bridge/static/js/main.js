// The dashboard: wires the live feed to the views, asks for a token when the
// server wants one, and keeps ages and runtimes ticking between snapshots.

import { AlertsPanel } from "./alerts.js";
import { AuthRequired, getJson, loadConfig, token } from "./api.js";
import { bannerState } from "./banner.js";
import { dateTime, nowSeconds } from "./format.js";
import { figures, HistorySource, LocalRecorder, RANGES, ThroughputMeter } from "./history.js";
import { LiveFeed } from "./live.js";
import { Overview } from "./overview.js";
import { TasksView } from "./tasks.js";
import { WorkersTable } from "./workers.js";

const $ = (id) => document.getElementById(id);
const HISTORY_REFRESH = 60000;
const TRENDS_REFRESH = 60000;

const state = {
  config: null,
  snapshot: null,
  receivedAt: 0,
  transport: "connecting",
  authNeeded: false,
  range: "1h",
};

const overview = new Overview($("cards"));
const workers = new WorkersTable($("workers-table"), $("workers-summary"));
const meter = new ThroughputMeter();
const recorder = new LocalRecorder();
let history = null;
// Whether a snapshot has told us if the server records history (history.state); nothing is asked before.
let historyKnown = false;
let feed = null;
let alerts = null;

const tasks = new TasksView({
  active: $("active-table"),
  scheduled: $("scheduled-table"),
  activeCount: $("active-count"),
  scheduledCount: $("scheduled-count"),
  results: $("search-results"),
  form: $("search-form"),
  input: $("search-input"),
  clear: $("search-clear"),
  onAuth: () => needToken("Your token was not accepted."),
});

function renderBanner() {
  const banner = $("banner");
  const { state: name, icon, text } = bannerState({
    snapshot: state.snapshot,
    receivedAt: state.receivedAt,
    transport: state.transport,
    nowMs: performance.now(),
    authNeeded: state.authNeeded,
  });
  if (banner.dataset.state !== name) {
    banner.dataset.state = name;
    $("banner-announce").textContent = text;
  }
  banner.querySelector(".banner-icon").textContent = icon;
  const textNode = banner.querySelector(".banner-text");
  if (textNode.textContent !== text) textNode.textContent = text;
  document.title = name === "connected" ? "Celery status" : `(${name.replace("-", " ")}) Celery status`;
}

function renderTransport() {
  const words = {
    connecting: "Connecting…",
    websocket: "Live over WebSocket",
    polling: "WebSocket unavailable: polling every 2 s",
    offline: "Cannot reach the server: retrying",
  };
  $("transport").textContent = words[state.transport] || state.transport;
  $("transport").dataset.transport = state.transport;
}

function onSnapshot(snapshot, receivedAt) {
  state.snapshot = snapshot;
  state.receivedAt = receivedAt;
  const now = nowSeconds();
  meter.update(snapshot, now);
  const f = figures(snapshot);
  f.throughput = meter.rate(now);
  overview.update(f, snapshot);
  if (snapshot.connected && !snapshot.stale) recorder.add(now, f);
  if (!historyKnown && history && (snapshot.observed_at || snapshot.enabled === false)) learnHistory(snapshot);
  if (!history || !history.available) overview.charts(recorder.series(), "since this page was opened");
  workers.update(snapshot, now, meter);
  tasks.update(snapshot, now);
  $("observed").textContent = snapshot.observed_at ? `Observed ${dateTime(snapshot.observed_at)}` : "";
  renderBanner();
}

function onTransport(transport) {
  state.transport = transport;
  renderTransport();
  renderBanner();
}

/** The first real snapshot says whether the server records history; only then is the history API asked. */
function learnHistory(snapshot) {
  historyKnown = true;
  const recording = snapshot.history && ["ok", "degraded"].includes(snapshot.history.state);
  if (recording) {
    loadHistory();
    loadTrends();
  } else if (history.available) {
    history.disable("History is off on this server: charts show what this page has seen since it was opened.");
    historyUnavailable();
  }
}

async function loadHistory() {
  if (!history || !history.available || !historyKnown || state.authNeeded) return;
  try {
    const data = await history.load(state.range);
    if (data) overview.charts(data, `last ${state.range}`);
  } catch (error) {
    if (error instanceof AuthRequired) needToken("Your token was not accepted.");
    return;
  }
  if (!history.available) historyUnavailable();
}

function historyUnavailable() {
  const note = $("history-note");
  note.textContent = history.reason;
  note.hidden = false;
  for (const button of document.querySelectorAll(".range button")) {
    button.disabled = button.dataset.range !== "1h";
  }
  overview.charts(recorder.series(), "since this page was opened");
}

async function loadTrends() {
  const served = state.config && state.config.features && state.config.features.trends;
  if (!served || !historyKnown || !history || !history.available || state.authNeeded) return;
  try {
    tasks.runtimes.fromTrends(await getJson("/api/celery-status/trends", { params: { window: "1h" } }));
  } catch {
    // Trends are a refinement: without them, runtimes seen by this page are the baseline.
  }
}

function setupRange() {
  for (const button of document.querySelectorAll(".range button")) {
    button.addEventListener("click", () => {
      if (button.disabled || !RANGES[button.dataset.range]) return;
      state.range = button.dataset.range;
      for (const b of document.querySelectorAll(".range button")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      loadHistory();
    });
  }
}

// --- token ---------------------------------------------------------------

function needToken(message) {
  if (feed) feed.stop();
  alerts && alerts.stop();
  token.clear();
  state.authNeeded = true;
  renderBanner();
  const dialog = $("token-dialog");
  const error = $("token-error");
  error.textContent = message || "";
  error.hidden = !message;
  if (!dialog.open) dialog.showModal();
  $("token-input").focus();
}

async function submitToken(event) {
  event.preventDefault();
  const value = $("token-input").value.trim();
  if (!value) return;
  token.set(value);
  try {
    // One cheap request proves the token before anything else uses it.
    await getJson("/api/celery-status", { params: { view: "summary" } });
  } catch (error) {
    if (error instanceof AuthRequired) {
      needToken("That token was not accepted.");
      return;
    }
  }
  $("token-input").value = "";
  $("token-dialog").close();
  state.authNeeded = false;
  $("sign-out").hidden = false;
  startFeeds();
}

function startFeeds() {
  renderBanner();
  if (!feed) {
    feed = new LiveFeed({ config: state.config, onSnapshot, onTransport, onAuth: () => needToken("Your token was not accepted.") });
  }
  feed.restart();
  alerts.start();
  // Asked again once the next snapshot says whether the server records history.
  historyKnown = false;
}

async function main() {
  state.config = await loadConfig();
  const features = state.config.features || {};
  history = new HistorySource(features.history);
  if (!history.available) historyUnavailable();
  alerts = new AlertsPanel($("alerts"), $("alerts-body"), { available: features.alerts, onAuth: () => needToken("Your token was not accepted.") });
  setupRange();
  $("token-form").addEventListener("submit", submitToken);
  // Escape must not leave a page that cannot show anything.
  $("token-dialog").addEventListener("cancel", (event) => event.preventDefault());
  $("sign-out").addEventListener("click", () => needToken(""));
  renderTransport();

  // Ages, runtimes and "gone" times move on between snapshots.
  setInterval(() => {
    renderBanner();
    if (state.snapshot) tasks.render(nowSeconds());
  }, 1000);
  setInterval(loadHistory, HISTORY_REFRESH);
  if (features.trends) setInterval(loadTrends, TRENDS_REFRESH);

  if (state.config.auth_required && !token.current()) {
    needToken("");
    return;
  }
  $("sign-out").hidden = !token.current();
  startFeeds();
}

main();
