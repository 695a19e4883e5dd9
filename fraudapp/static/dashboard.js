// Live dashboard: one Server-Sent Events snapshot a second from /dashboard/events.
"use strict";
const COLORS = { clean: "#2e9d5b", suspicious: "#e0a526", fraud: "#c0392b" };
const TYPE_COLORS = ["#c0392b", "#8e44ad", "#2c7fb8", "#d35400", "#16a085", "#7f8c8d", "#e84393", "#34495e"];
const fmtTime = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
const pct = (x) => (100 * x).toFixed(1) + " %";

Chart.defaults.animation = false;
const rateChart = new Chart(document.getElementById("chart-rate"), {
  type: "line",
  data: { labels: [], datasets: [{ label: "clicks/s", data: [], borderColor: "#2c7fb8", backgroundColor: "rgba(44,127,184,.15)", fill: true, pointRadius: 0, tension: 0.2 }] },
  options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
});
const mixChart = new Chart(document.getElementById("chart-mix"), {
  type: "bar",
  data: { labels: [], datasets: ["clean", "suspicious", "fraud"].map((v) => ({ label: v, data: [], backgroundColor: COLORS[v] })) },
  options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
});
const typesChart = new Chart(document.getElementById("chart-types"), {
  type: "bar",
  data: { labels: [], datasets: [{ label: "fraud verdicts", data: [], backgroundColor: TYPE_COLORS }] },
  options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
});
const campaignsChart = new Chart(document.getElementById("chart-campaigns"), {
  type: "bar",
  data: { labels: [], datasets: [{ label: "fraud ratio %", data: [], backgroundColor: "#c0392b" }] },
  options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, max: 100 } } },
});

function fillTable(id, rows) {
  const table = document.getElementById(id);
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

function fillAlerts(alerts) {
  const feed = document.getElementById("alert-feed");
  if (!alerts.length) return;
  feed.replaceChildren(...alerts.map((a) => {
    const li = document.createElement("li");
    const types = Object.keys(a.top_fraud_types || {}).join(", ");
    li.textContent = `${fmtTime(a.seen_at)} · ${a.scope} ${a.id}: ${a.fraud}/${a.clicks} fraud (${pct(a.ratio || 0)}) ${types}`;
    return li;
  }));
}

// The candidate in shadow: clicks compared, would-flip counts per fraud type, a few examples.
function fillRules(rules) {
  document.getElementById("rules-live").textContent = `· live version ${rules.version}`;
  const summary = document.getElementById("shadow-summary");
  const types = document.getElementById("shadow-types");
  const examples = document.getElementById("shadow-examples");
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
  const series = s.series;
  const labels = series.map((r) => fmtTime(r.t));
  rateChart.data.labels = labels;
  rateChart.data.datasets[0].data = series.map((r) => r.clicks);
  rateChart.update();
  mixChart.data.labels = labels;
  ["clean", "suspicious", "fraud"].forEach((v, i) => { mixChart.data.datasets[i].data = series.map((r) => r[v]); });
  mixChart.update();
  const types = Object.entries(s.since_start.fraud_types).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  typesChart.data.labels = types.map(([t]) => t);
  typesChart.data.datasets[0].data = types.map(([, n]) => n);
  typesChart.update();
  campaignsChart.data.labels = s.campaigns.map((c) => c.id);
  campaignsChart.data.datasets[0].data = s.campaigns.map((c) => +(100 * c.ratio).toFixed(1));
  campaignsChart.update();
  fillTable("top-devices", s.top.devices);
  fillTable("top-ips", s.top.ips);
  fillTable("top-publishers", s.top.publishers);
  fillAlerts(s.recent_alerts);
  if (s.rules) fillRules(s.rules);
  const last5 = series.slice(-6, -1);  // the current second is still filling
  const rate = last5.reduce((a, r) => a + r.clicks, 0) / Math.max(1, last5.length);
  document.getElementById("rate").textContent = rate.toFixed(1);
  document.getElementById("total").textContent = s.since_start.clicks;
  document.getElementById("fraud").textContent = s.since_start.verdicts.fraud;
  document.getElementById("ratio").textContent = pct(s.last_window.fraud_ratio);
  document.getElementById("alerts-count").textContent = s.alerts;
  document.getElementById("footer").textContent =
    `served by ${s.served_by} · counting since ${fmtTime(s.since)} · last window ${s.window_seconds} s · updated ${fmtTime(s.now)}`;
}

function setStatus(on, text) {
  const el = document.getElementById("status");
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
