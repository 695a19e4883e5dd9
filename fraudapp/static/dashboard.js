// Live dashboard: one Server-Sent Events snapshot a second from /dashboard/events.
// Two sections drawn by the same code: clicks (ids as they are) and transactions (ids
// prefixed "tx-"), each from its own part of the snapshot.
"use strict";
const COLORS = { clean: "#2e9d5b", suspicious: "#e0a526", fraud: "#c0392b" };
const TYPE_COLORS = ["#c0392b", "#8e44ad", "#2c7fb8", "#d35400", "#16a085", "#7f8c8d", "#e84393", "#34495e"];
const fmtTime = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
const pct = (x) => (100 * x).toFixed(1) + " %";
const byId = (id) => document.getElementById(id);

Chart.defaults.animation = false;

// A section: its charts (records per second, verdict mix, fraud types), tiles, top tables
// and alert feed. `unit` is the name of the count in the snapshot ("clicks", "transfers").
function makeSection({ prefix, unit, classes, tables, alertText }) {
  const id = (name) => prefix + name;
  const rate = new Chart(byId("chart-" + id("rate")), {
    type: "line",
    data: { labels: [], datasets: [{ label: unit + "/s", data: [], borderColor: "#2c7fb8", backgroundColor: "rgba(44,127,184,.15)", fill: true, pointRadius: 0, tension: 0.2 }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const mix = new Chart(byId("chart-" + id("mix")), {
    type: "bar",
    data: { labels: [], datasets: classes.map((v) => ({ label: v, data: [], backgroundColor: COLORS[v] })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const types = new Chart(byId("chart-" + id("types")), {
    type: "bar",
    data: { labels: [], datasets: [{ label: "fraud verdicts", data: [], backgroundColor: TYPE_COLORS }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  return (s) => {
    const series = s.series;
    const labels = series.map((r) => fmtTime(r.t));
    rate.data.labels = labels;
    rate.data.datasets[0].data = series.map((r) => r[unit]);
    rate.update();
    mix.data.labels = labels;
    classes.forEach((v, i) => { mix.data.datasets[i].data = series.map((r) => r[v]); });
    mix.update();
    const counted = Object.entries(s.since_start.fraud_types).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    types.data.labels = counted.map(([t]) => t);
    types.data.datasets[0].data = counted.map(([, n]) => n);
    types.update();
    for (const [table, name] of Object.entries(tables)) fillTable(table, s.top[name]);
    fillAlerts(id("alert-feed"), s.recent_alerts, alertText);
    const last5 = series.slice(-6, -1);  // the current second is still filling
    const perSecond = last5.reduce((a, r) => a + r[unit], 0) / Math.max(1, last5.length);
    byId(id("rate")).textContent = perSecond.toFixed(1);
    byId(id("total")).textContent = s.since_start[unit];
    byId(id("fraud")).textContent = s.since_start.verdicts.fraud;
    byId(id("ratio")).textContent = pct(s.last_window.fraud_ratio);
    byId(id("alerts-count")).textContent = s.alerts;
  };
}

function fillTable(id, rows) {
  const table = byId(id);
  table.replaceChildren();
  if (!rows.length) {
    const td = table.insertRow().insertCell();
    td.textContent = "none yet"; td.className = "muted";
    return;
  }
  for (const [name, count] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = name;
    const n = tr.insertCell(); n.textContent = count; n.className = "n";
  }
}

function fillAlerts(id, alerts, alertText) {
  const feed = byId(id);
  if (!alerts.length) return;
  feed.replaceChildren(...alerts.map((a) => {
    const li = document.createElement("li");
    li.textContent = `${fmtTime(a.seen_at)} · ${alertText(a)}`;
    if (a.kind) li.dataset.kind = a.kind;
    return li;
  }));
}

const topTypes = (a) => Object.keys(a.top_fraud_types || {}).join(", ");
const clickAlert = (a) => `${a.scope} ${a.id}: ${a.fraud}/${a.clicks} fraud (${pct(a.ratio || 0)}) ${topTypes(a)}`;
// Scope wallet: a transfer touching a blacklisted wallet, or a sender over its flagged threshold.
const walletAlert = (a) => a.kind === "blacklisted_counterparty"
  ? `blacklisted wallet ${a.id} ${a.direction} ${a.amount} ${a.asset} (${a.direction === "sent" ? "to" : "from"} ${a.counterparty}, tx ${a.tx_id})${a.reason ? ": " + a.reason : ""}`
  : `wallet ${a.id}: ${a.fraud}/${a.clicks} transfers flagged (${pct(a.ratio || 0)}) ${topTypes(a)}`;

const renderClicks = makeSection({
  prefix: "", unit: "clicks", classes: ["clean", "suspicious", "fraud"], alertText: clickAlert,
  tables: { "top-devices": "devices", "top-ips": "ips", "top-publishers": "publishers" },
});
const renderTransfers = makeSection({
  prefix: "tx-", unit: "transfers", classes: ["clean", "fraud"], alertText: walletAlert,
  tables: { "top-wallets": "wallets" },
});
const campaignsChart = new Chart(byId("chart-campaigns"), {
  type: "bar",
  data: { labels: [], datasets: [{ label: "fraud ratio %", data: [], backgroundColor: "#c0392b" }] },
  options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, max: 100 } } },
});

// The candidate in shadow: clicks compared, would-flip counts per fraud type, a few examples.
function fillRules(rules) {
  byId("rules-live").textContent = `· live version ${rules.version}`;
  const summary = byId("shadow-summary");
  const types = byId("shadow-types");
  const examples = byId("shadow-examples");
  const shadow = rules.shadow;
  types.replaceChildren();
  examples.replaceChildren();
  if (!shadow) { summary.textContent = "no candidate in shadow"; summary.className = "muted"; return; }
  const r = shadow.report;
  summary.className = "";
  summary.textContent = r
    ? `candidate version ${shadow.version}: ${r.flipped} of ${r.clicks} clicks would flip (${pct(r.flip_ratio)})`
    : `candidate version ${shadow.version}: no click compared yet`;
  if (!r) return;
  const head = types.insertRow();
  for (const title of ["fraud type", "would gain", "would lose"]) head.insertCell().textContent = title;
  for (const [name, c] of Object.entries(r.by.fraud_types)) {
    const tr = types.insertRow();
    tr.insertCell().textContent = name;
    for (const n of [c.gained, c.lost]) { const td = tr.insertCell(); td.textContent = n; td.className = "n"; }
  }
  for (const kinds of Object.values(r.examples)) {
    for (const changes of Object.values(kinds)) {
      for (const c of changes.slice(0, 2)) {
        const li = document.createElement("li");
        const fmt = (o) => `${o.verdict}${o.fraud_types.length ? " [" + o.fraud_types.join(", ") + "]" : ""}`;
        li.textContent = `${c.click_id} (${c.campaign_id ?? "no campaign"}): ${fmt(c.before)} → ${fmt(c.after)}`;
        examples.appendChild(li);
      }
    }
  }
}

function render(s) {
  renderClicks(s);
  const ivt = s.since_start.ivt;  // the MRC classes of the fraud verdicts (CONTRACT §3 ivt)
  if (ivt) byId("ivt").textContent = `${ivt.givt} / ${ivt.sivt}`;
  campaignsChart.data.labels = s.campaigns.map((c) => c.id);
  campaignsChart.data.datasets[0].data = s.campaigns.map((c) => +(100 * c.ratio).toFixed(1));
  campaignsChart.update();
  if (s.rules) fillRules(s.rules);
  if (s.transactions) {
    renderTransfers(s.transactions);
    const tap = byId("tx-status");
    tap.dataset.state = s.transactions.tap_ready ? "live" : "starting";
    tap.textContent = s.transactions.tap_ready ? "live" : "tap starting";
  }
  byId("footer").textContent =
    `served by ${s.served_by} · counting since ${fmtTime(s.since)} · last window ${s.window_seconds} s · updated ${fmtTime(s.now)}`;
}

function setStatus(on, text) {
  const el = byId("status");
  el.className = "status " + (on ? "on" : "off");
  el.dataset.state = on ? "live" : "offline";
  el.textContent = text;
}

const source = new EventSource("/dashboard/events");  // reconnects by itself
source.onopen = () => setStatus(true, "live");
source.onerror = () => setStatus(false, "reconnecting…");
source.onmessage = (event) => {
  const snapshot = JSON.parse(event.data);
  setStatus(true, snapshot.tap_ready ? "live" : "live (tap starting)");
  render(snapshot);
};
