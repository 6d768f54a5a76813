#pragma once

/// @file
/// The dashboard served at GET /: one static page, no build step, no external
/// resources. It polls GET /api/jobs every 500 ms. Every piece of job data is
/// put in the page with textContent (never innerHTML), so a job named
/// "<script>" shows as text.

#include <string_view>

namespace jobtrack::examples::http {

inline constexpr std::string_view kDashboardHtml = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jobtrack dashboard</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1f2328; background: #f6f8fa; }
  body { max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .sub { color: #57606a; margin-top: 0; }
  .forms { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
  form { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .8rem; display: flex; gap: .5rem; align-items: center; }
  form label { font-weight: 600; }
  input[type=text] { padding: .3rem .4rem; border: 1px solid #d0d7de; border-radius: 4px; width: 9rem; }
  button { padding: .3rem .8rem; border-radius: 4px; border: 1px solid #1f883d; background: #1f883d; color: #fff; cursor: pointer; }
  button.cancel { border-color: #cf222e; background: #fff; color: #cf222e; }
  #notice { min-height: 1.4rem; color: #cf222e; }
  table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #eaeef2; vertical-align: middle; }
  th { background: #f6f8fa; font-size: .85rem; color: #57606a; }
  td.name { max-width: 16rem; overflow-wrap: anywhere; }
  td.outcome { max-width: 18rem; overflow-wrap: anywhere; }
  td.id { font-family: ui-monospace, monospace; font-size: .75rem; color: #57606a; }
  progress { width: 9rem; }
  .status { font-weight: 600; font-size: .8rem; padding: .1rem .4rem; border-radius: 1rem; }
  .PENDING { background: #eaeef2; } .RUNNING { background: #ddf4ff; color: #0969da; }
  .COMPLETED { background: #dafbe1; color: #1a7f37; } .FAILED { background: #ffebe9; color: #cf222e; }
  .CANCELLED { background: #fff8c5; color: #9a6700; }
  .empty { color: #57606a; text-align: center; }
</style>
</head>
<body>
<h1>jobtrack dashboard</h1>
<p class="sub">Start a job, watch it run, cancel it. Updated every 500&nbsp;ms from <code>GET /api/jobs</code>.</p>

<div class="forms">
  <form id="hello-form" data-endpoint="/api/hello">
    <label for="hello-name">Hello</label>
    <input id="hello-name" name="name" type="text" value="john" maxlength="100" required>
    <button type="submit">Start</button>
  </form>
  <form id="compose-form" data-endpoint="/api/hello/compose">
    <label for="compose-name">Compose</label>
    <input id="compose-name" name="name" type="text" value="john" maxlength="100" required>
    <button type="submit">Start</button>
  </form>
  <form id="race-form" data-endpoint="/api/hello/race">
    <label>Race</label>
    <button type="submit">Start</button>
  </form>
</div>
<div id="notice" role="status" aria-live="polite"></div>

<table>
  <thead><tr><th>Job</th><th>Status</th><th>Progress</th><th>Result / error</th><th>Started</th><th>Id</th><th></th></tr></thead>
  <tbody id="jobs"><tr><td class="empty" colspan="7">No jobs yet.</td></tr></tbody>
</table>

<script>
"use strict";
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const tbody = document.getElementById("jobs");
const notice = document.getElementById("notice");

function say(text) { notice.textContent = text; }

async function problemText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch (e) { /* not JSON */ }
  return "HTTP " + response.status;
}

async function startJob(form) {
  const input = form.querySelector("input[name=name]");
  const init = { method: "POST", headers: { "Content-Type": "application/json" } };
  init.body = JSON.stringify(input ? { name: input.value } : {});
  try {
    const response = await fetch(form.dataset.endpoint, init);
    if (response.status !== 202) { say(await problemText(response)); return; }
    const accepted = await response.json();
    say("");
    form.dataset.lastJobId = accepted.jobId;
    refresh();
  } catch (e) {
    say("Cannot reach the server: " + e.message);
  }
}

async function cancelJob(id) {
  try {
    const response = await fetch("/api/jobs/" + encodeURIComponent(id), { method: "DELETE" });
    if (response.status !== 200 && response.status !== 202) say(await problemText(response));
    refresh();
  } catch (e) {
    say("Cannot reach the server: " + e.message);
  }
}

function cell(row, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function makeRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.jobId;
  cell(row, "name");
  const statusCell = cell(row);
  const badge = document.createElement("span");
  badge.className = "status";
  statusCell.appendChild(badge);
  const bar = document.createElement("progress");
  bar.max = 100;
  cell(row, "progress").appendChild(bar);
  cell(row, "outcome");
  cell(row, "started");
  cell(row, "id").textContent = job.jobId;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cancel";
  button.textContent = "Cancel";
  button.addEventListener("click", () => cancelJob(row.dataset.jobId));
  cell(row, "actions").appendChild(button);
  return row;
}

function updateRow(row, job) {
  row.dataset.status = job.status;
  row.querySelector(".name").textContent = job.name;
  const badge = row.querySelector(".status");
  badge.textContent = job.status;
  badge.className = "status " + job.status;
  const bar = row.querySelector("progress");
  bar.value = job.progress;
  bar.title = job.progress + "%" + (job.message ? " - " + job.message : "");
  let outcome = "";
  if (job.error) outcome = job.error;
  else if (job.result !== null && job.result !== undefined)
    outcome = typeof job.result === "string" ? job.result : JSON.stringify(job.result);
  row.querySelector(".outcome").textContent = outcome;
  row.querySelector(".started").textContent = job.startedAt ? new Date(job.startedAt).toLocaleTimeString() : "";
  row.querySelector("button.cancel").hidden = TERMINAL.has(job.status);
}

function render(jobs) {
  const existing = new Map();
  for (const row of tbody.querySelectorAll("tr[data-job-id]")) existing.set(row.dataset.jobId, row);
  const rows = jobs.map((job) => {
    const row = existing.get(job.jobId) || makeRow(job);
    updateRow(row, job);
    return row;
  });
  if (rows.length === 0) {
    const row = document.createElement("tr");
    const td = cell(row, "empty");
    td.colSpan = 7;
    td.textContent = "No jobs yet.";
    rows.push(row);
  }
  tbody.replaceChildren(...rows);
}

let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const response = await fetch("/api/jobs?limit=20", { cache: "no-store" });
    if (response.ok) render((await response.json()).jobs);
    else say(await problemText(response));
  } catch (e) {
    say("Cannot reach the server: " + e.message);
  } finally {
    inFlight = false;
  }
}

for (const form of document.querySelectorAll("form[data-endpoint]")) {
  form.addEventListener("submit", (event) => { event.preventDefault(); startJob(form); });
}
refresh();
setInterval(refresh, 500);
</script>
</body>
</html>
)HTML";

}  // namespace jobtrack::examples::http
