// The timeline's tooltip: a marker's <title> shown beside it on hover and on keyboard focus (a
// browser shows <title> on hover only, and late). The text goes in through textContent.
"use strict";

(function () {
  const figure = document.querySelector("figure.timeline");
  if (!figure) return;
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.id = "timeline-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  figure.appendChild(tip);

  function show(mark) {
    const title = mark.querySelector("title");
    tip.textContent = title ? title.textContent : mark.getAttribute("aria-label") || "";
    tip.hidden = false;
    const box = mark.getBoundingClientRect();
    const frame = figure.getBoundingClientRect();
    const left = Math.min(box.right - frame.left + 6, Math.max(0, frame.width - tip.offsetWidth));
    tip.style.left = left + "px";
    tip.style.top = (box.bottom - frame.top + 4) + "px";
    mark.setAttribute("aria-describedby", tip.id);
  }

  function hide(mark) {
    tip.hidden = true;
    if (mark) mark.removeAttribute("aria-describedby");
  }

  const markOf = (event) => event.target.closest && event.target.closest("a.mark");
  figure.addEventListener("focusin", (event) => { const m = markOf(event); if (m) show(m); });
  figure.addEventListener("focusout", (event) => hide(markOf(event)));
  figure.addEventListener("mouseover", (event) => { const m = markOf(event); if (m) show(m); });
  figure.addEventListener("mouseout", (event) => { const m = markOf(event); if (m && document.activeElement !== m) hide(m); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") hide(null); });
})();
