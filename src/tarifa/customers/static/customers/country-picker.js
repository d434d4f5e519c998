// Country picker (seed 001 "Allow Calls to Countries"): search, and select all per region.
// Progressive: without this script the check boxes work as they are.
(function () {
  "use strict";
  function refresh(picker) {
    var total = 0;
    picker.querySelectorAll("details[data-region]").forEach(function (region) {
      var boxes = region.querySelectorAll("[data-country] input[type=checkbox]");
      var chosen = 0;
      boxes.forEach(function (box) { if (box.checked) { chosen += 1; } });
      total += chosen;
      region.querySelector("[data-region-count]").textContent = chosen;
      var all = region.querySelector("[data-select-all]");
      all.checked = chosen === boxes.length && boxes.length > 0;
      all.indeterminate = chosen > 0 && chosen < boxes.length;
    });
    picker.querySelector("[data-country-total]").textContent = total;
  }
  function setUp(picker) {
    picker.querySelectorAll("[data-select-all]").forEach(function (all) {
      all.addEventListener("click", function (event) {
        event.stopPropagation();
        var region = all.closest("details");
        region.querySelectorAll("[data-country]").forEach(function (row) {
          if (row.style.display !== "none") { row.querySelector("input").checked = all.checked; }
        });
        refresh(picker);
      });
    });
    picker.addEventListener("change", function () { refresh(picker); });
    var search = picker.querySelector("[data-country-search]");
    search.addEventListener("input", function () {
      var needle = search.value.trim().toLowerCase();
      picker.querySelectorAll("details[data-region]").forEach(function (region) {
        var shown = 0;
        region.querySelectorAll("[data-country]").forEach(function (row) {
          var match = !needle || row.getAttribute("data-country").indexOf(needle) !== -1;
          row.style.display = match ? "" : "none";
          if (match) { shown += 1; }
        });
        region.style.display = shown ? "" : "none";
        if (needle) { region.open = shown > 0; }
      });
    });
    search.addEventListener("keydown", function (event) { if (event.key === "Enter") { event.preventDefault(); } });
    refresh(picker);
  }
  function start() { document.querySelectorAll("[data-country-picker]").forEach(setUp); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
