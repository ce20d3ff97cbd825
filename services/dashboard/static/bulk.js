// Bulk review: "select every row of this page" for the row checkboxes of the bulk form.
"use strict";

(function () {
  const all = document.getElementById("bulk-select-page");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('input[name="finding_id"][form="bulk"]')) box.checked = all.checked;
  });
})();
