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
      button.textContent = button.getAttribute("data-copied") || "✓";
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

  // Words the user reads come from the page's data-attributes (translated on the server).
  function say(elt, name, n) {
    return (elt.getAttribute(name) || "").replace("{n}", n);
  }

  // Typing in a field: single-key shortcuts stay out of the way.
  function typing(target) {
    return target.closest && target.closest("input, textarea, select, [contenteditable]") &&
      !target.matches('input[type="checkbox"], input[type="radio"], input[type="submit"]');
  }

  // ---- The gallery's selection: tick, Shift+click a range, or every image matching the
  // filter (the form's all=1 plus its filters, never a list of every ID).
  var lastPicked = null;
  function picks() {
    return Array.prototype.slice.call(document.querySelectorAll('.gallery input[name="ids"]'));
  }
  function selectionChanged() {
    var form = document.querySelector("[data-selection]");
    if (!form) return;
    var all = form.querySelector("[data-select-all]");
    var values = {};
    picks().forEach(function (box) { if (box.checked) values[box.value] = true; });
    var ticked = Object.keys(values).length;
    var everything = all && all.checked;
    var status = form.querySelector("[data-selection-status]");
    if (status) {
      status.textContent = everything ? say(form, "data-text-all", form.getAttribute("data-total"))
        : ticked ? say(form, "data-text-some", ticked) : say(form, "data-text-none", 0);
    }
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = !(ticked || everything);
    });
    var zip = form.querySelector("[data-selected-count]");
    if (zip) {
      var n = everything ? form.getAttribute("data-total") : ticked;
      zip.textContent = n ? say(zip, "data-label-count", n) : say(zip, "data-label", 0);
    }
  }
  document.addEventListener("click", function (event) {
    var box = event.target.closest && event.target.closest('.gallery input[name="ids"]');
    if (!box) return;
    var all = picks();
    var changed = [box];
    if (event.shiftKey && lastPicked && lastPicked !== box && all.indexOf(lastPicked) >= 0) {
      var a = all.indexOf(lastPicked), b = all.indexOf(box);
      changed = all.slice(Math.min(a, b), Math.max(a, b) + 1);
    }
    var values = {};
    changed.forEach(function (x) { values[x.value] = true; });
    all.forEach(function (x) { if (values[x.value]) x.checked = box.checked; });  // a grid's four tiles
    lastPicked = box;
    var everything = document.querySelector("[data-select-all]");
    if (everything && !box.checked) everything.checked = false;
    selectionChanged();
  });
  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-select-all]")) return;
    var on = event.target.checked;
    picks().forEach(function (box) { box.checked = on; });
    selectionChanged();
  });
  document.addEventListener("DOMContentLoaded", selectionChanged);
  window.addEventListener("pageshow", selectionChanged);  // ticks the browser kept on Back

  // ---- The lightbox: a <dialog> the tiles open (their href, the task page, is the fallback).
  // ←/→ step through the whole filtered set (the server names the neighbours, across pages),
  // F favourites, Esc or Back closes, a swipe steps on a touch screen.
  var lightbox = null;
  var opener = null;
  var pushed = false;
  var lastControl = null;

  function viewer() {  // the open dialog, or the lightbox page of its own
    if (lightbox && lightbox.open) return lightbox;
    var page = document.querySelector(".lightbox-page");
    return page && !document.querySelector("dialog[open]") ? page : null;
  }
  var busy = false;  // one step at a time, however fast the key repeats
  function load(verb, url, source) {
    if (busy) return;
    busy = true;
    var body = document.getElementById("lightbox-body");  // its hx-indicator: the loading bar
    htmx.ajax(verb, url, { source: source || body, target: body, swap: "innerHTML" });
  }
  function openLightbox(url) {
    load("GET", url);
  }
  function closeLightbox() {
    if (pushed) {
      history.back();  // popstate closes it, so Back and Esc do the same
    } else {
      finishClose();
    }
  }
  function finishClose() {
    pushed = false;
    var current = lightbox.querySelector("[data-lightbox-current]");
    lightbox.querySelectorAll("video").forEach(function (v) { v.pause(); });
    if (lightbox.open) lightbox.close();
    var tile = null;
    if (current) {
      var part = current.getAttribute("data-part");
      var sel = '.gallery li[data-task="' + current.getAttribute("data-task") + '"]';
      tile = document.querySelector(sel + (part ? '[data-part="' + part + '"]' : "") + " a[data-lightbox]") ||
        document.querySelector(sel + " a[data-lightbox]");
    }
    document.getElementById("lightbox-body").innerHTML = "";
    var back = tile || opener;
    if (back) {
      back.focus({ focusVisible: true });
      back.scrollIntoView({ block: "nearest" });
    }
  }
  function focusables(root) {
    return Array.prototype.filter.call(
      root.querySelectorAll("a[href], button:not([disabled]), input:not([type=hidden]), video[controls], [tabindex]:not([tabindex='-1'])"),
      function (e) { return e.offsetParent !== null || e === document.activeElement; }
    );
  }
  function press(name) {
    var view = viewer();
    var control = view && view.querySelector("[data-lightbox-" + name + "]");
    if (!control) return false;
    lastControl = name;
    if (control.form) {
      control.form.requestSubmit();
    } else {
      load("GET", control.getAttribute("href"));
    }
    return true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    lightbox = document.getElementById("lightbox");
    if (!lightbox) return;
    lightbox.addEventListener("cancel", function (event) {  // Esc
      event.preventDefault();
      closeLightbox();
    });
    var start = null;
    lightbox.addEventListener("touchstart", function (event) {
      var t = event.changedTouches[0];
      start = { x: t.clientX, y: t.clientY };
    }, { passive: true });
    lightbox.addEventListener("touchend", function (event) {
      if (!start) return;
      var t = event.changedTouches[0];
      var dx = t.clientX - start.x, dy = t.clientY - start.y;
      start = null;
      if (Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) press(dx < 0 ? "next" : "prev");
    });
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var link = event.target.closest("a[data-lightbox]");
    if (link && lightbox && window.htmx && event.button === 0 &&
        !(event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) {
      event.preventDefault();
      opener = link;
      lastControl = null;
      openLightbox(link.getAttribute("data-lightbox"));
      return;
    }
    var step = event.target.closest("#lightbox-body a[data-step]");
    if (step && window.htmx && event.button === 0 &&
        !(event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) {
      event.preventDefault();
      lastControl = step.hasAttribute("data-lightbox-next") ? "next"
        : step.hasAttribute("data-lightbox-prev") ? "prev" : null;
      load("GET", step.getAttribute("href"));
      return;
    }
    var close = event.target.closest("[data-lightbox-close]");
    if (close && lightbox && lightbox.open) {
      event.preventDefault();
      closeLightbox();
    }
  });

  document.addEventListener("submit", function (event) {  // the star
    var form = event.target.closest("#lightbox-body form.lb-fav");
    if (!form || !window.htmx) return;
    event.preventDefault();
    lastControl = "fav";
    load("POST", form.getAttribute("action"), form);
  });
  ["htmx:responseError", "htmx:sendError", "htmx:afterSwap"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (event.detail.target && event.detail.target.id === "lightbox-body") busy = false;
    });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "lightbox-body") return;
    var body = event.detail.target;
    var current = body.querySelector("[data-lightbox-current]");
    if (!current) return;
    var url = current.getAttribute("data-url");
    if (lightbox && !lightbox.open) {
      lightbox.showModal();
      if (!(history.state && history.state.mjdashLightbox)) {
        history.pushState({ mjdashLightbox: true }, "", url);
        pushed = true;
      }
    } else {
      history.replaceState(history.state, "", url);  // steps replace: Back still closes
    }
    // The tile on the page shows the same favourite mark as the lightbox.
    var marks = body.querySelector("template[data-tile-marks]");
    var tile = marks && document.getElementById(marks.getAttribute("data-tile-marks"));
    if (tile && !body.contains(tile)) {
      var fresh = marks.content.firstElementChild.cloneNode(true);
      tile.replaceWith(fresh);
      htmx.process(fresh);
    }
    var again = lastControl && body.querySelector("[data-lightbox-" + lastControl + "]");
    (again || body.querySelector("[data-lightbox-close]")).focus();
  });

  window.addEventListener("popstate", function () {
    if (!lightbox) return;
    if (lightbox.open) {
      pushed = false;
      finishClose();
    } else if (history.state && history.state.mjdashLightbox) {
      openLightbox(location.href);  // Forward to an image: open it again
    }
  });

  // ---- Keys: / searches, ? helps; in the lightbox ←, →, F, Esc; Tab stays inside it.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var view = viewer();
    if (event.key === "Tab" && view === lightbox && lightbox) {
      var items = focusables(lightbox);
      if (!items.length) return;
      var first = items[0], last = items[items.length - 1];
      if (event.shiftKey && (document.activeElement === first || !lightbox.contains(document.activeElement))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !lightbox.contains(document.activeElement))) {
        event.preventDefault();
        first.focus();
      }
      return;
    }
    if (typing(event.target)) return;
    if (view && !event.target.matches("video")) {
      var name = { ArrowRight: "next", ArrowLeft: "prev", f: "fav", F: "fav" }[event.key];
      if (name && press(name)) {
        event.preventDefault();
        return;
      }
      if (event.key === "Escape" && view !== lightbox && press("close")) return;
    }
    if (event.key === "/" && !view) {
      var search = document.querySelector('form.filters input[name="q"]');
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    } else if (event.key === "?") {
      var help = document.getElementById("shortcuts");
      if (help && !help.open) {
        event.preventDefault();
        help.showModal();
      }
    }
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest("[data-shortcuts-open]")) return;
    var help = document.getElementById("shortcuts");
    if (help) help.showModal();
  });

  // Ctrl/Cmd+Enter sends the paste box.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var area = event.target.closest("textarea");
    if (area && area.form) {
      event.preventDefault();
      area.form.requestSubmit();
    }
  });

  // ---- Notifications in the page: a toast when a task on screen finishes or fails (the
  // poll swaps its row; the row's .task-state says the status), the running count in the
  // title, and, if the user turned them on here, a browser notification while the tab is
  // in the background. Words come from #toasts' and the opt-in's data-attributes.
  var FINISHED = { success: "done", failure: "failed", cancel: "failed", missing: "" };
  var OPTED_IN = "mjdash-notifications";
  var TOAST_MS = 10000;
  var MAX_TOASTS = 3;  // more at once become one "n tasks finished"
  var seen = {};
  var baseTitle = document.title.replace(/^\(\d+\) /, "");

  function statusOf(state) {
    var match = /(?:^|\s)status-([\w-]+)/.exec(state.className);
    return match ? match[1] : "";
  }
  function states() {
    var found = {};
    document.querySelectorAll(".task-state[data-task]").forEach(function (state) {
      found[state.getAttribute("data-task")] = statusOf(state);
    });
    return found;
  }
  function runningCount(now) {
    var counter = document.querySelector("[data-running]");
    if (counter) return parseInt(counter.getAttribute("data-running"), 10) || 0;
    return Object.keys(now).filter(function (id) { return !(now[id] in FINISHED); }).length;
  }
  function showTitle(now) {
    var n = runningCount(now);
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }
  function notificationsOn() {
    return "Notification" in window && Notification.permission === "granted" &&
      localStorage.getItem(OPTED_IN) === "on";
  }
  function toast(box, text, href) {
    var item = document.createElement("div");
    item.className = "toast";
    var words = document.createElement(href ? "a" : "span");
    words.textContent = text;
    if (href) words.href = href;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", say(box, "data-text-dismiss"));
    close.textContent = "×";
    item.append(words, close);
    box.append(item);
    while (box.children.length > MAX_TOASTS + 1) box.firstElementChild.remove();
    var timer = null;
    function later() { timer = setTimeout(function () { item.remove(); }, TOAST_MS); }
    item.addEventListener("mouseenter", function () { clearTimeout(timer); });
    item.addEventListener("focusin", function () { clearTimeout(timer); });
    item.addEventListener("mouseleave", later);
    later();
    if (document.hidden && notificationsOn()) {
      new Notification("mjdash", { body: text, tag: href || text });
    }
  }
  function finishedNow(before, now) {
    return Object.keys(now).filter(function (id) {
      return id in before && !(before[id] in FINISHED) && FINISHED[now[id]];
    });
  }
  function announce() {
    var now = states();
    var box = document.getElementById("toasts");
    var done = finishedNow(seen, now);
    seen = now;
    showTitle(now);
    if (!box || !done.length) return;
    if (done.length > MAX_TOASTS) {
      toast(box, say(box, "data-text-many", done.length), "");
      return;
    }
    done.forEach(function (id) {
      var url = (box.getAttribute("data-task-url") || "").replace("TASK", encodeURIComponent(id));
      var here = location.pathname === url;
      toast(box, say(box, "data-text-" + FINISHED[now[id]], id), here ? "" : url);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    seen = states();
    showTitle(seen);
  });
  document.addEventListener("htmx:afterSettle", announce);
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest(".toast-close");
    if (close) close.parentElement.remove();
  });

  // The opt-in (Settings): permission is asked only when the button is clicked.
  function showOptIn() {
    var button = document.querySelector("[data-notify-optin]");
    var state = document.querySelector("[data-notify-state]");
    if (!button || !state) return;
    var supported = "Notification" in window;
    var permission = supported ? Notification.permission : "denied";
    button.hidden = !supported || permission === "denied" || notificationsOn();
    state.textContent = !supported ? say(state, "data-text-unsupported")
      : permission === "denied" ? say(state, "data-text-blocked")
      : notificationsOn() ? say(state, "data-text-on") : "";
  }
  document.addEventListener("DOMContentLoaded", showOptIn);
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest("[data-notify-optin]")) return;
    Notification.requestPermission().then(function (permission) {
      if (permission === "granted") localStorage.setItem(OPTED_IN, "on");
      showOptIn();
    });
  });
})();
