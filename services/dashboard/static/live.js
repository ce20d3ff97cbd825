// Live arrivals on the findings list: the list holds still. The page shows a snapshot (findings up
// to its as_of sequence number); new findings under the same filter are counted and offered as
// "N new — show", which opens the list at a new snapshot. Rows, total, summary and pager never
// change under the user. Everything from data goes in through textContent, never as HTML.
"use strict";

(function () {
  const status = document.getElementById("live-status");
  const arrivals = document.getElementById("arrivals");
  if (!status || !arrivals) return;
  const query = status.dataset.query || "";
  let busy = false;
  let again = false;

  function showLink(newest) {
    const url = new URL(window.location.href);
    url.searchParams.set("as_of", String(newest));
    url.searchParams.delete("offset");
    return url.pathname + url.search;
  }

  async function countArrivals() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const response = await fetch("/api/arrivals?" + query, { credentials: "same-origin" });
        if (!response.ok) break;
        const body = await response.json();
        if (body.arrived > 0) {
          arrivals.textContent = body.arrived + " new — show";
          arrivals.dataset.count = String(body.arrived);
          arrivals.href = showLink(body.newest_seq);
          arrivals.hidden = false;
          status.textContent = "Live: " + body.arrived + " new finding(s) since this list was drawn.";
        } else {
          status.textContent = "Live: listening for new findings.";
        }
      } while (again);
    } finally {
      busy = false;
    }
  }

  const source = new EventSource("/api/live");
  source.addEventListener("ready", () => countArrivals());
  source.addEventListener("changed", () => countArrivals());
  source.onerror = () => { status.textContent = "Live: reconnecting…"; };
})();
