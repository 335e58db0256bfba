// mjdash: a few small behaviours on top of htmx. No inline scripts, no eval (CSP).
(function () {
  "use strict";

  // Poll fast while the tab is visible, once a minute while it is hidden (healthchecks' rhythm).
  var HIDDEN_EVERY_MS = 60000;
  var lastPoll = new WeakMap();
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.hasAttribute("data-poll")) return;
    if (document.hidden && Date.now() - (lastPoll.get(elt) || 0) < HIDDEN_EVERY_MS) {
      event.preventDefault();
      return;
    }
    lastPoll.set(elt, Date.now());
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[data-poll]").forEach(function (elt) {
      htmx.trigger(elt, "poll-now");
    });
  });

  // Copy buttons: <button data-copy="#selector">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied ✓";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // htmx never copies a style attribute across a swap (the CSP forbids inline styles), so a
  // paste box the user resized keeps its height here, through the CSSOM, which CSP allows.
  var heights = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    event.detail.target.querySelectorAll("textarea[id]").forEach(function (area) {
      if (area.style.height) heights[area.id] = area.style.height;
    });
  });
  document.addEventListener("htmx:afterSwap", function () {
    Object.keys(heights).forEach(function (id) {
      var area = document.getElementById(id);
      if (area) area.style.height = heights[id];
    });
  });

  // The gallery's "Selected" ZIP button says how many are ticked, and waits for one.
  function countSelected() {
    var button = document.querySelector("[data-selected-count]");
    if (!button) return;
    var ticked = document.querySelectorAll('input[name="ids"][form="zip-form"]:checked').length;
    button.textContent = ticked ? "Selected (" + ticked + ")" : "Selected";
    button.disabled = ticked === 0;
    button.title = ticked ? "" : "Tick images first";
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches('input[name="ids"]')) countSelected();
  });
  document.addEventListener("DOMContentLoaded", countSelected);

  // Ctrl/Cmd+Enter sends the paste box.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var area = event.target.closest("textarea");
    if (area && area.form) {
      event.preventDefault();
      area.form.requestSubmit();
    }
  });
})();
