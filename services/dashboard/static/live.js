// Live updates of the findings list: new findings appear at the top, marked new, and the counts
// follow. Everything from data goes in through textContent, never as HTML.
"use strict";

(function () {
  const status = document.getElementById("live-status");
  const rows = document.getElementById("finding-rows");
  if (!status || !rows) return;
  let newest = Number(status.dataset.newestSeq || "0");
  const query = status.dataset.query || "";
  const headers = Array.from(document.querySelectorAll("[data-testid=findings] thead th")).map((th) => th.textContent.replace(/[▲▼]/g, "").trim());
  let busy = false;
  let again = false;

  function cell(text, href) {
    const td = document.createElement("td");
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function selectBox(item) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "finding_id";
    box.value = item.finding_id;
    box.setAttribute("form", "bulk");
    box.setAttribute("aria-label", "select " + item.rule_id + " of " + item.participant_id);
    return box;
  }

  function row(item) {
    const tr = document.createElement("tr");
    tr.className = ["new", item.kind, item.severity || ""].join(" ");
    if (item.kind === "alert" && (item.status === "open" || item.status === "acknowledged")) tr.classList.add("open-alert");
    tr.dataset.findingId = item.finding_id;
    tr.dataset.rule = item.rule_id;
    tr.append(
      cell(item.participant_id, "/participants/" + encodeURIComponent(item.participant_id)),
      cell(item.site_id),
      cell(item.rule_id, "/findings/" + encodeURIComponent(item.finding_id)),
      cell(item.kind),
      cell(item.category),
      cell(item.severity || item.alert_severity || "—"),
      cell(item.term),
      cell(item.protocol_reference),
      cell(item.occurred_at),
      cell(item.raised_at),
      cell(item.status),
      cell(String(item.days_open)),
      cell(item.assignee || ""),
    );
    tr.children[10].className = "status " + item.status;
    // Each cell names its column: on a phone the rows are cards (app.css).
    Array.from(tr.children).forEach((td, i) => { if (headers[i]) td.dataset.label = headers[i]; });
    if (document.getElementById("bulk")) tr.children[0].prepend(selectBox(item), " ");  // bulk review's
    return tr;
  }

  async function refreshSummary() {
    const response = await fetch("/api/summary?" + query, { credentials: "same-origin" });
    if (!response.ok) return;
    const body = await response.json();
    const total = document.querySelector("[data-testid=total]");
    if (total) total.textContent = String(body.total);
    const tbody = document.querySelector("[data-testid=summary] tbody");
    const statuses = Array.from(document.querySelectorAll("[data-testid=summary] thead th"))
      .slice(1, -1).map((th) => th.textContent);
    tbody.replaceChildren();
    for (const [category, counts] of Object.entries(body.by_category)) {
      const tr = document.createElement("tr");
      tr.dataset.category = category;
      const th = document.createElement("th");
      th.textContent = category;
      tr.appendChild(th);
      let all = 0;
      for (const s of statuses) {
        const td = cell(String(counts[s] || 0));
        td.dataset.status = s;
        tr.appendChild(td);
        all += counts[s] || 0;
      }
      tr.appendChild(cell(String(all)));
      tbody.appendChild(tr);
    }
  }

  async function catchUp() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const sep = query ? "&" : "";
        const response = await fetch("/api/findings?" + query + sep + "after_seq=" + newest + "&limit=200",
                                      { credentials: "same-origin" });
        if (!response.ok) break;
        const body = await response.json();
        const items = body.items.slice().sort((a, b) => b.seq - a.seq);
        for (const item of items.reverse()) rows.prepend(row(item));
        newest = Math.max(newest, body.newest_seq);
        if (items.length) status.textContent = "Live: " + items.length + " new finding(s) just arrived.";
        await refreshSummary();
      } while (again);
    } finally {
      busy = false;
    }
  }

  const source = new EventSource("/api/live");
  source.addEventListener("ready", () => { status.textContent = "Live: listening for new findings."; catchUp(); });
  source.addEventListener("changed", () => catchUp());
  source.onerror = () => { status.textContent = "Live: reconnecting…"; };
})();
