// Conveyor's delivery dashboard: reads /api/dashboard, redraws when the
// server says new events were applied (/api/events, server-sent events).
// No framework and no build step; everything is served by the metrics service.
"use strict";

const page = {
  id: Math.random().toString(36).slice(2), // changes only on a reload
  renders: 0,
};
window.conveyorDashboard = page;

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = seconds / 3600;
  if (hours < 48) return `${hours.toFixed(1)} h`;
  return `${(hours / 24).toFixed(1)} d`;
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

function element(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== "") e.textContent = text;
  return e;
}

function trend(svg, values) {
  svg.replaceChildren();
  const max = Math.max(0, ...values.filter((v) => v !== null));
  if (!values.length || max === 0) return;
  const width = 100 / values.length;
  values.forEach((v, i) => {
    if (v === null) return;
    const h = Math.max(1, (v / max) * 24);
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("x", (i * width + width * 0.1).toFixed(2));
    rect.setAttribute("width", (width * 0.8).toFixed(2));
    rect.setAttribute("y", (24 - h).toFixed(2));
    rect.setAttribute("height", h.toFixed(2));
    svg.appendChild(rect);
  });
}

function tile(name, value, text, detail, series) {
  const t = document.querySelector(`[data-test="${name}"]`);
  const v = t.querySelector(".value");
  v.dataset.value = value === null || value === undefined ? "" : String(value);
  v.textContent = text;
  t.querySelector(".detail").textContent = detail;
  trend(t.querySelector(".trend"), series);
}

function render(data) {
  const d = data.dora;
  const s = data.series;
  tile("deployments", d.deployments, String(d.deployments),
    `${d.perDay.toFixed(2)} per day · ${d.band || "no"} band`,
    s.map((p) => p.deployments));
  tile("lead-time", d.leadTimeMedianSeconds, formatDuration(d.leadTimeMedianSeconds),
    `median · p90 ${formatDuration(d.leadTimeP90Seconds)} · ${d.commits} commits`,
    s.map((p) => p.leadTimeMedianSeconds));
  tile("change-failure-rate", d.changeFailureRate, `${Math.round(d.changeFailureRate * 100)}%`,
    `${d.failedDeployments} of ${d.countedDeployments} deployments`,
    s.map((p) => p.changeFailureRate));
  tile("recovery-time", d.recoveryMedianSeconds, formatDuration(d.recoveryMedianSeconds),
    `median · ${d.recoveries} recovered · ${d.unrecovered} open`,
    s.map((p) => p.recoveryMedianSeconds));

  const pipelines = document.querySelector("#pipelines tbody");
  pipelines.replaceChildren(...data.pipelines.map((p) => {
    const row = element("tr", { "data-pipeline": p.name });
    row.appendChild(element("td", {}, p.name.replace(/^pipelines\//, "")));
    const health = element("td");
    health.appendChild(element("span", { class: `badge ${p.health}`, "data-test": "health" }, p.health));
    if (p.failedStage) health.appendChild(document.createTextNode(` ${p.failedStage}: ${p.failureReason}`));
    row.appendChild(health);
    const run = element("td");
    if (p.currentExecution) {
      run.appendChild(document.createTextNode(p.currentExecution.split("/").pop().slice(0, 12) + " "));
      run.appendChild(element("span", { class: `badge ${p.currentOutcome}` }, (p.currentOutcome || "").replace("_", " ")));
    }
    row.appendChild(run);
    const stages = element("td");
    for (const st of p.stages) {
      stages.appendChild(element("span", { class: `badge stage ${st.state}`, title: st.state }, st.name));
    }
    row.appendChild(stages);
    return row;
  }));

  const deployments = document.querySelector("#deployments tbody");
  deployments.replaceChildren(...data.deployments.map((x) => {
    const row = element("tr", { "data-deployment": x.name });
    row.appendChild(element("td", {}, x.name.replace(/^deployments\//, "")));
    row.appendChild(element("td", { "data-production": String(x.production) }, x.environment));
    const outcome = element("td");
    outcome.appendChild(element("span", { class: `badge ${x.outcome}` }, x.outcome.replace("_", " ")));
    if (x.changeFailure) outcome.appendChild(document.createTextNode(" change failure"));
    row.appendChild(outcome);
    row.appendChild(element("td", {}, formatTime(x.startTime)));
    row.appendChild(element("td", {}, formatTime(x.endTime)));
    row.appendChild(element("td", {}, String(x.commits)));
    return row;
  }));

  document.getElementById("data-time").textContent = formatTime(data.dataTime);
  page.renders += 1;
  document.body.dataset.renders = String(page.renders);
}

function query() {
  const form = new FormData(document.getElementById("filters"));
  const params = new URLSearchParams();
  for (const [k, v] of form.entries()) if (v) params.set(k, v);
  return params.toString();
}

let loading = null;
async function load() {
  // One request at a time; a burst of updates ends in one more load.
  if (loading) { loading.again = true; return; }
  loading = { again: false };
  try {
    const response = await fetch(`/api/dashboard?${query()}`);
    if (response.ok) render(await response.json());
  } catch (e) {
    console.warn("dashboard load failed", e);
  } finally {
    const again = loading.again;
    loading = null;
    if (again) load();
  }
}

function listen() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => live.className = "live on");
  events.addEventListener("error", () => live.className = "live off");
  events.addEventListener("update", () => load());
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filters").addEventListener("change", () => load());
  listen();
  load();
});
