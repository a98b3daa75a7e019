// What the banner says: one state computed from the latest snapshot, how the
// page receives snapshots, and how long ago the last one arrived.

import { duration } from "./format.js";

const UNAVAILABLE = "status service unavailable";
// Below this, a snapshot is never called stale: rounds take time, clocks drift.
const STALE_FLOOR = 10;

/** Seconds since the cluster was observed, counting the time since the page received it. */
export function snapshotAge(snapshot, receivedAt, nowMs) {
  if (!snapshot) return null;
  const base = typeof snapshot.age === "number" ? snapshot.age : 0;
  return base + Math.max(0, nowMs - receivedAt) / 1000;
}

export function staleAfter(snapshot) {
  const interval = snapshot && snapshot.inspection && snapshot.inspection.refresh_interval;
  return Math.max(STALE_FLOOR, 3 * (interval || 2));
}

/** {state, icon, text}; state is one of connected, stale, broker-down, unreachable, disabled, connecting, auth. */
export function bannerState({ snapshot, receivedAt, transport, nowMs, authNeeded }) {
  if (authNeeded) return { state: "auth", icon: "🔒", text: "Token required" };
  if (!snapshot) {
    if (transport === "offline") return { state: "unreachable", icon: "✕", text: "Cannot reach the status service" };
    return { state: "connecting", icon: "…", text: "Connecting…" };
  }
  const age = snapshotAge(snapshot, receivedAt, nowMs);
  const ageText = duration(age);
  if (snapshot.enabled === false) {
    return { state: "disabled", icon: "⏸", text: `Disabled${snapshot.message ? ` — ${snapshot.message}` : ""}` };
  }
  if (transport === "offline" && age > staleAfter(snapshot)) {
    return { state: "unreachable", icon: "✕", text: `Cannot reach the status service — data ${ageText} old` };
  }
  if (!snapshot.connected) {
    if (snapshot.error === UNAVAILABLE) {
      return { state: "unreachable", icon: "✕", text: "Status service unreachable" };
    }
    const why = snapshot.error ? `: ${snapshot.error}` : "";
    return { state: "broker-down", icon: "✕", text: `Broker down${why} — last good data ${ageText} old` };
  }
  if (snapshot.stale || age > staleAfter(snapshot)) {
    return { state: "stale", icon: "⚠", text: `Stale — last snapshot ${ageText} old` };
  }
  return { state: "connected", icon: "✓", text: `Connected — updated ${ageText} ago` };
}
