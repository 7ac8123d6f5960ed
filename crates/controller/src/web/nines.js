// nines's own script: progressive enhancement only (every page works without it).
// The name filter of a list filters its rows as one types.
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const table = document.getElementById(input.dataset.filter);
    if (!table) continue;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const row of table.querySelectorAll("tbody tr[data-name]")) {
        row.hidden = needle !== "" && !row.dataset.name.toLowerCase().includes(needle);
      }
    });
  }
});

// Buttons that need a confirmation ask for it (failover asks for the cluster's name in
// its own field, which works without this script too).
document.addEventListener("submit", (e) => {
  const form = e.target;
  const msg = form.dataset && form.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});

const SHAPES = { healthy: "●", degraded: "▲", failed: "✖", online: "●" };
const CLASSES = { healthy: "ok", online: "ok", degraded: "warn" };

function badge(word) {
  const span = document.createElement("span");
  span.className = "state " + (CLASSES[word] || "bad");
  const shape = document.createElement("span");
  shape.setAttribute("aria-hidden", "true");
  shape.textContent = SHAPES[word] || "✖";
  span.append(shape, " " + word);
  return span;
}

// Live states: cluster badges and node badges change in place (server-sent events).
document.addEventListener("DOMContentLoaded", () => {
  if (!document.querySelector("[data-cluster-state], [data-node-state]") || !window.EventSource) return;
  const es = new EventSource("/ui/stream");
  // A page left open (a wall screen) says when what it shows stopped being live; the
  // browser reconnects by itself, and the first event after that carries every state.
  es.addEventListener("error", () => {
    const stamp = document.getElementById("updated");
    if (stamp) {
      stamp.textContent = "not live: reconnecting to nines…";
      stamp.classList.add("error");
    }
  });
  es.addEventListener("states", (e) => {
    const data = JSON.parse(e.data);
    for (const c of data.clusters) {
      for (const el of document.querySelectorAll("[data-cluster-state]")) {
        if (el.dataset.clusterState === c.name) el.replaceChildren(badge(c.state));
      }
    }
    for (const n of data.nodes) {
      for (const card of document.querySelectorAll("article.node[data-address]")) {
        if (card.dataset.address !== n.address) continue;
        const el = card.querySelector("[data-node-state]");
        if (el) { const b = badge(n.state); b.dataset.nodeState = ""; el.replaceWith(b); }
      }
    }
    const stamp = document.getElementById("updated");
    if (stamp) {
      stamp.textContent = "live, updated " + new Date(data.at).toLocaleTimeString(undefined, { hourCycle: "h23" });
      stamp.classList.remove("error");
    }
    document.dispatchEvent(new CustomEvent("nines:states", { detail: data }));
  });
});

// A running job's page follows its log and progress.
document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("job-log");
  if (!log || log.dataset.live !== "true" || !window.EventSource) return;
  const es = new EventSource(`/ui/jobs/${log.dataset.job}/events?after=${log.dataset.after}`);
  es.addEventListener("job", (e) => {
    const data = JSON.parse(e.data);
    for (const l of data.lines) {
      const t = new Date(l.at).toISOString().slice(11, 19);
      log.append(`${t} ${l.level}  ${l.message}\n`);
    }
    if (data.job) {
      document.getElementById("job-state").textContent = data.job.state;
      document.getElementById("job-phase").textContent = data.job.phase;
      const p = document.getElementById("job-progress");
      p.value = data.job.percent;
      p.textContent = data.job.percent + "%";
      if (data.job.error) {
        const err = document.getElementById("job-error");
        err.textContent = data.job.error;
        err.hidden = false;
      }
      if (!["queued", "running"].includes(data.job.state)) es.close();
    }
  });
});

// The topology follows the roles the stream reports: when a node's role differs from the
// drawing (a switchover or failover happened), the drawing is fetched again. The stream
// sends only what changed, so the page keeps the latest role of every node and compares
// the whole drawing with it at each event (one every two seconds): a change that arrived
// while a drawing was loading, or a drawing fetched a moment before the change was
// recorded, is caught at the next event instead of being lost.
const knownRoles = new Map();
document.addEventListener("nines:states", async (e) => {
  for (const n of e.detail.nodes) knownRoles.set(n.address, n.role);
  const topo = document.querySelector(".topology[data-cluster]");
  if (!topo || topo.dataset.loading) return;
  const changed = [...topo.querySelectorAll(".box[data-address][data-role]")].some((box) => {
    const role = knownRoles.get(box.dataset.address);
    return role !== undefined && role !== box.dataset.role;
  });
  if (!changed) return;
  topo.dataset.loading = "1";
  try {
    const r = await fetch(`/clusters/${encodeURIComponent(topo.dataset.cluster)}/topology`, { credentials: "same-origin" });
    if (r.ok) {
      const holder = document.createElement("div");
      holder.innerHTML = await r.text();
      const fresh = holder.querySelector(".topology");
      if (fresh) topo.replaceWith(fresh);
    }
  } finally {
    delete topo.dataset.loading;
  }
});

// Times: the server writes UTC; they are shown in the browser's time zone unless the
// reader chose UTC (kept in this browser). The UTC time stays in each one's title.
function showTimes() {
  const utc = localStorage.getItem("nines-tz") === "UTC";
  const fmt = utc ? null : new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });
  for (const t of document.querySelectorAll("time[datetime]")) {
    if (!t.dataset.utc) t.dataset.utc = t.textContent;
    const d = new Date(t.getAttribute("datetime"));
    if (utc || isNaN(d)) { t.textContent = t.dataset.utc; continue; }
    // 2026-11-30 13:53:36 CET: the same shape as the UTC text, in the local zone.
    const p = Object.fromEntries(fmt.formatToParts(d).map((x) => [x.type, x.value]));
    t.textContent = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
  }
  const toggle = document.getElementById("tz-toggle");
  if (toggle) toggle.textContent = utc ? "times: UTC" : "times: local";
}
document.addEventListener("DOMContentLoaded", () => {
  const who = document.querySelector("header.top .who");
  if (who) {
    const b = document.createElement("button");
    b.id = "tz-toggle";
    b.type = "button";
    b.className = "link";
    b.title = "show times in UTC or in this browser's time zone";
    b.addEventListener("click", () => {
      localStorage.setItem("nines-tz", localStorage.getItem("nines-tz") === "UTC" ? "local" : "UTC");
      showTimes();
    });
    who.prepend(b);
  }
  showTimes();
});
