// The operator's console page. Everything it shows comes from the console's own API, which
// serves verified answers only; it builds the page with DOM calls (never HTML strings), so
// nothing a node sends can run as script here.
"use strict";

const state = { session: null, alarms: new Map(), caseload: [], fitted: false, lastHistory: null };

const $ = (id) => document.getElementById(id);
const el = (tag, props, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};
const utc = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
const short = (hex) => hex.slice(0, 8) + "…";
const ago = (s) => (s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`);

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (!response.ok) {
    throw new Error(`${response.status}: ${(await response.text()).trim()}`);
  }
  return response.json();
}

// The map: Leaflet with the configured tiles, or a plain grid drawn here (nothing fetched).
const map = L.map("map", { keyboard: true }).setView([52.3676, 4.9041], 12);
L.control.scale({ imperial: false }).addTo(map);
const fenceLayer = L.featureGroup().addTo(map);
const historyLayer = L.featureGroup().addTo(map);
const caseloadLayer = L.featureGroup().addTo(map);

// What the map's shapes are (text, not colour alone: each kind is also dashed differently).
const Legend = L.Control.extend({
  onAdd() {
    const box = el("div", { className: "legend" });
    box.setAttribute("role", "note");
    box.append(
      el("span", { className: "key key-fence" }), " fence zone (granted level or coarser)", el("br"),
      el("span", { className: "key key-latest" }), " latest cell", el("br"),
      el("span", { className: "key key-history" }), " history cell",
    );
    return box;
  },
});
new Legend({ position: "bottomright" }).addTo(map);

const GridTiles = L.GridLayer.extend({
  createTile(coords) {
    const tile = document.createElement("div");
    tile.className = "grid-tile";
    tile.textContent = `${coords.z}/${coords.x}/${coords.y}`;
    return tile;
  },
});

function setTiles(tiles) {
  if (tiles.kind === "url") {
    // The page sends no referrer (see the console's headers); OpenStreetMap's tile policy asks
    // for one, so tiles carry the console's origin (never a path or the token).
    L.tileLayer(tiles.template, { maxZoom: 19, attribution: tiles.attribution, referrerPolicy: "strict-origin" }).addTo(map);
  } else {
    new GridTiles({ maxZoom: 22 }).addTo(map);
  }
}

// History cells are blue; a patient's latest cell is dark red and dashed, drawn over them.
function cellRect(cell, className) {
  const latest = className === "caseload-cell";
  return L.rectangle([[cell.s, cell.w], [cell.n, cell.e]], {
    className,
    color: latest ? "#a4001d" : "#1a4fd6",
    weight: latest ? 3 : 2,
    dashArray: latest ? "6 4" : null,
    fillOpacity: latest ? 0.1 : 0.2,
  });
}

// Alarms.
function beep() {
  try {
    const audio = new (window.AudioContext || window.webkitAudioContext)();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.3);
  } catch (e) {
    // No sound (no device, or the browser wants a gesture first): the banner still shows.
  }
}

// A new alarm flashes the banner (renderAlarms writes it: the newest not acknowledged).
function flashBanner() {
  const banner = $("banner");
  banner.classList.remove("flash");
  void banner.offsetWidth;
  banner.classList.add("flash");
}

// Updates the list in place: an item is rebuilt only when its acknowledgement changes, and new
// alarms go in above the others, so keyboard focus stays where the operator left it.
function renderAlarms() {
  const list = $("alarms");
  const items = [...state.alarms.values()].sort((a, b) => b.height - a.height || b.time_ms - a.time_ms);
  const shown = new Map([...list.children].map((li) => [li.dataset.id, li]));
  items.forEach((alarm, i) => {
    let li = shown.get(alarm.id);
    if (!li || li.dataset.acked !== String(!!alarm.ack)) {
      const fresh = alarmItem(alarm);
      if (li) li.replaceWith(fresh);
      li = fresh;
    }
    shown.delete(alarm.id);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  for (const gone of shown.values()) gone.remove();
  const open = items.filter((a) => !a.ack).length;
  $("unacked").textContent = open;
  $("unacked").dataset.zero = String(open === 0);
  $("no-alarms").hidden = items.length > 0;
  document.title = open ? `(${open}) bmpls console` : "bmpls console";
  const newest = items.find((a) => !a.ack);
  if (newest) {
    $("banner").textContent = `${newest.kind} alarm: patient ${short(newest.patient)} at ${utc(newest.time_ms)}` +
      (open > 1 ? ` (${open} not acknowledged)` : "");
  }
  $("banner").hidden = !newest;
}

function alarmItem(alarm) {
  const delay = alarm.received_ms - alarm.time_ms;
  const item = el("li", {});
  item.dataset.id = alarm.id;
  item.dataset.kind = alarm.kind;
  item.dataset.seq = String(alarm.seq);
  item.dataset.acked = String(!!alarm.ack);
  item.dataset.delayMs = String(delay);
  item.append(
    el("strong", {}, `${alarm.kind} `),
    `patient ${short(alarm.patient)}, record ${alarm.seq}, block ${alarm.height} at ${utc(alarm.time_ms)} `,
    el("span", { className: "muted" }, `(received ${delay} ms after the block) `),
    el("br"),
  );
  if (alarm.ack) {
    item.append(el("span", { className: "state" }, `Acknowledged by ${alarm.ack.by} at ${utc(alarm.ack.at_ms)}`));
  } else {
    const button = el("button", { type: "button", className: "ack" }, "Acknowledge");
    button.setAttribute("aria-label", `Acknowledge the ${alarm.kind} alarm of patient ${short(alarm.patient)}`);
    button.addEventListener("click", () => acknowledge(alarm.id));
    item.append(el("span", { className: "state" }, "Not acknowledged "), button);
  }
  return item;
}

async function acknowledge(id) {
  const by = $("operator").value.trim();
  if (!by) {
    $("operator").focus();
    return;
  }
  try {
    const alarm = await api("/api/ack", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": state.session.csrf },
      body: JSON.stringify({ id, by }),
    });
    state.alarms.set(alarm.id, alarm);
    renderAlarms();
    const next = document.querySelector("#alarms button.ack");
    (next || $("alarms")).focus();
  } catch (e) {
    $("caseload-status").textContent = `Acknowledgement not kept: ${e.message}`;
  }
}

function setWatch(status) {
  const watch = $("watch");
  watch.dataset.ok = String(!!status.ok);
  watch.textContent = status.ok ? "alarms live (verified by f+1 validators)" : `alarms: ${status.message || "not connected"}`;
}

async function loadAlarms() {
  const answer = await api("/api/alarms");
  state.alarms = new Map(answer.alarms.map((a) => [a.id, a]));
  setWatch(answer.watch);
  renderAlarms();
}

// Caseload.
const FENCE_STATE = { inside: "inside", outside: "outside", silent: "missing (no report)", unknown: "unknown yet (no alarm)" };

function fenceBounds(fence) {
  return fence.cells.reduce((b, c) => b.extend([[c.s, c.w], [c.n, c.e]]), L.latLngBounds([]));
}

// A patient's standing fences (as f+1 validators list them), each with its state; a fence at a
// finer level than granted is named, never drawn.
function fenceText(row) {
  const f = row.fences;
  const box = el("span", {});
  const line = (...parts) => box.append(...parts, el("br"));
  if (f.problem) line(el("span", { className: "fence-fault" }, `fences not known: ${f.problem}`));
  else if (!f.fences.length) line(el("span", { className: "muted" }, "no fence"));
  for (const fence of f.fences) {
    const since = fence.since_ms ? ` since ${utc(fence.since_ms).slice(11)}` : "";
    const item = el("span", { className: `fence-${fence.state}`, title: `fence ${fence.fence}` },
      `${fence.level} fence: ${FENCE_STATE[fence.state] || fence.state}${since}`);
    const parts = [item];
    if (fence.note) parts.push(" ", el("span", { className: "muted" }, `(${fence.note})`));
    if (fence.cells.length) {
      const show = el("button", { type: "button", className: "show-fence" }, "Zone");
      show.setAttribute("aria-label", `Show the ${fence.level} fence of patient ${short(row.patient)} on the map`);
      show.addEventListener("click", () => map.fitBounds(fenceBounds(fence), { maxZoom: 17 }));
      parts.push(" ", show);
    }
    line(...parts);
  }
  if (f.more) line(el("span", { className: "muted" }, "more fences than shown"));
  for (const fault of f.faults) line(el("span", { className: "fence-fault" }, `validators disagree: ${fault}`));
  return box;
}

// A fence's zone: one polygon of its cells' rectangles, green and dashed, under the caseload.
function fenceZone(row, fence) {
  const rings = fence.cells.map((c) => [[c.s, c.w], [c.s, c.e], [c.n, c.e], [c.n, c.w]]);
  return L.polygon(rings, { className: "fence-zone", color: "#0b5d1e", weight: 2, dashArray: "2 4", fillOpacity: 0.08 })
    .bindTooltip(`fence of patient ${short(row.patient)} at ${fence.level}: ${FENCE_STATE[fence.state] || fence.state}`);
}

function renderCaseload(answer) {
  state.caseload = answer.rows;
  caseloadLayer.clearLayers();
  fenceLayer.clearLayers();
  const body = $("caseload").tBodies[0];
  body.replaceChildren();
  const select = $("history-patient");
  const chosen = select.value;
  select.replaceChildren();
  for (const row of answer.rows) {
    const tr = el("tr", {});
    tr.dataset.patient = row.patient;
    const patientCell = el("td", { title: row.patient }, short(row.patient));
    const last = row.latest
      ? `${utc(row.latest.time_ms)} (${ago(row.age_s)})`
      : row.problem;
    const battery = row.latest && row.latest.exact && row.latest.exact.battery_percent
      ? `${row.latest.exact.battery_percent}%` : "not shown";
    const show = el("button", { type: "button" }, "Show");
    show.setAttribute("aria-label", `Show patient ${short(row.patient)} on the map`);
    show.disabled = !row.latest;
    show.addEventListener("click", () => {
      if (row.latest) map.fitBounds([[row.latest.cell.s, row.latest.cell.w], [row.latest.cell.n, row.latest.cell.e]], { maxZoom: 17 });
    });
    const hist = el("button", { type: "button" }, "History");
    hist.setAttribute("aria-label", `History of patient ${short(row.patient)}`);
    hist.addEventListener("click", () => {
      select.value = row.patient;
      $("history-run").focus();
    });
    tr.append(patientCell, el("td", {}, row.level), el("td", {}, last), el("td", {}, battery), el("td", {}, fenceText(row)), el("td", {}, show, " ", hist));
    body.append(tr);
    select.append(el("option", { value: row.patient }, `${short(row.patient)} (${row.level})`));
    for (const fence of row.fences.fences) {
      if (fence.cells.length) fenceZone(row, fence).addTo(fenceLayer);
    }
    if (row.latest) {
      const label = `patient ${short(row.patient)}, ${row.level}, ${utc(row.latest.time_ms)}`;
      cellRect(row.latest.cell, "caseload-cell").bindTooltip(label).addTo(caseloadLayer);
      if (row.latest.exact) {
        const fix = row.latest.exact;
        if (fix.accuracy_m) L.circle([fix.lat, fix.lon], { radius: fix.accuracy_m, className: "accuracy", weight: 1 }).addTo(caseloadLayer);
        L.circleMarker([fix.lat, fix.lon], { radius: 5, className: "exact-fix" }).bindTooltip(label).addTo(caseloadLayer);
      }
    }
  }
  if (chosen) select.value = chosen;
  $("caseload-status").textContent = `${answer.rows.length} patient(s), verified at ${utc(answer.at_ms)}` +
    (answer.left_out ? `; ${answer.left_out} more not shown` : "") + (answer.problem ? `; ${answer.problem}` : "");
  $("caseload").dataset.fences = String(fenceLayer.getLayers().length);
  $("caseload").dataset.loaded = "true";
  if (!state.fitted && caseloadLayer.getLayers().length) {
    map.fitBounds(caseloadLayer.getBounds(), { maxZoom: 15 });
    state.fitted = true;
  }
}

async function loadCaseload() {
  try {
    renderCaseload(await api("/api/caseload"));
  } catch (e) {
    $("caseload-status").textContent = `Caseload not loaded: ${e.message}`;
  }
}

// History.
function historyParams(format) {
  const params = new URLSearchParams({
    patient: $("history-patient").value,
    from_ms: String(new Date($("history-from").value).getTime()),
    to_ms: String(new Date($("history-to").value).getTime() + 59999),
  });
  if ($("history-level").value) params.set("level", $("history-level").value);
  if ($("history-area").value.trim()) params.set("area", $("history-area").value.trim());
  if (format) params.set("format", format);
  return params;
}

async function runHistory(event) {
  event.preventDefault();
  const status = $("history-status");
  status.textContent = "asking the validators…";
  historyLayer.clearLayers();
  const body = $("history").tBodies[0];
  body.replaceChildren();
  try {
    const h = await api(`/api/history?${historyParams("json")}`);
    for (const c of h.cells) {
      cellRect(c.cell, "history-cell").bindTooltip(`${c.records} record(s)`).addTo(historyLayer);
    }
    for (const r of h.records) {
      const fix = r.exact ? `${r.exact.lat.toFixed(6)}, ${r.exact.lon.toFixed(6)}` + (r.exact.accuracy_m ? ` ±${r.exact.accuracy_m} m` : "") : "not shown";
      body.append(el("tr", {}, el("td", {}, r.seq), el("td", {}, utc(r.time_ms)), el("td", {}, r.height),
        el("td", {}, `${r.cell.s.toFixed(5)}..${r.cell.n.toFixed(5)}, ${r.cell.w.toFixed(5)}..${r.cell.e.toFixed(5)}`), el("td", {}, fix)));
    }
    status.textContent = `${h.records.length} record(s) in ${h.cells.length} cell(s), verified at height ${h.at_height}` + (h.more ? "; more in the window" : "");
    status.dataset.records = String(h.records.length);
    status.dataset.cells = String(h.cells.length);
    caseloadLayer.bringToFront();
    if (h.cells.length) map.fitBounds(historyLayer.getBounds(), { maxZoom: 17 });
    for (const [id, format] of [["export-geojson", "geojson"], ["export-csv", "csv"]]) {
      $(id).href = `/api/history?${historyParams(format)}`;
      $(id).removeAttribute("aria-disabled");
    }
  } catch (e) {
    status.textContent = `No history: ${e.message}`;
  }
}

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

async function start() {
  state.session = await api("/api/session");
  $("carer").textContent = short(state.session.carer);
  $("carer").title = state.session.carer;
  $("role").textContent = state.session.role;
  $("operator").value = localStorage.getItem("bmpls-operator") || state.session.operator;
  $("operator").addEventListener("change", () => localStorage.setItem("bmpls-operator", $("operator").value.trim()));
  for (const name of state.session.levels) $("history-level").append(el("option", { value: name }, name));
  setTiles(state.session.tiles);
  const now = Date.now();
  $("history-from").value = localInput(now - 86400000);
  $("history-to").value = localInput(now);
  for (const id of ["export-geojson", "export-csv"]) $(id).setAttribute("aria-disabled", "true");
  $("history-form").addEventListener("submit", runHistory);
  $("refresh").addEventListener("click", loadCaseload);

  const events = new EventSource("/api/events");
  events.addEventListener("alarm", (e) => {
    const alarm = JSON.parse(e.data);
    const known = state.alarms.has(alarm.id);
    state.alarms.set(alarm.id, alarm);
    renderAlarms();
    if (!known && !alarm.ack) {
      flashBanner();
      beep();
    }
    loadCaseload();
  });
  events.addEventListener("ack", (e) => {
    const alarm = JSON.parse(e.data);
    state.alarms.set(alarm.id, alarm);
    renderAlarms();
  });
  events.addEventListener("watch", (e) => setWatch(JSON.parse(e.data)));
  events.addEventListener("resync", loadAlarms);
  events.addEventListener("open", loadAlarms);
  // The browser retries by itself; until it gets through, say that alarms are not arriving.
  events.addEventListener("error", () => setWatch({
    ok: false,
    message: events.readyState === EventSource.CLOSED
      ? "the console is gone or restarted: open the URL it printed at its start"
      : "reconnecting to the console…",
  }));
  await Promise.all([loadAlarms(), loadCaseload()]);
  // The caseload's positions age: ask again now and then (each ask is an audit entry).
  setInterval(loadCaseload, 60000);
}

start().catch((e) => {
  $("caseload-status").textContent = `The console did not start: ${e.message}`;
});
