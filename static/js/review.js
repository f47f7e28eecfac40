// One keystroke per decision on the review page (ignored while typing in a field), and the
// few seconds after an approval or a rejection in which it can still be undone.
(function () {
  "use strict";
  var countdown = null;

  function open(id, focus) {
    var panel = document.getElementById(id);
    if (!panel) return;
    panel.open = true;
    var field = focus && document.getElementById(focus);
    if (field) field.focus();
  }

  function click(id) {
    var button = document.getElementById(id);
    if (button) button.click();
  }

  // The decision is already recorded on the server; the window only delays the next trace,
  // so leaving the page early (reload, "n", a link) loses nothing.
  function startUndoWindow(bar) {
    var left = parseInt(bar.dataset.undoSeconds, 10) || 5;
    var shown = bar.querySelector(".undo-countdown");
    stopUndoWindow();
    countdown = window.setInterval(function () {
      left -= 1;
      if (shown) shown.textContent = String(Math.max(left, 0));
      if (left > 0) return;
      stopUndoWindow();
      var undo = document.getElementById("undo");
      if (undo) undo.disabled = true;
      click("next");
    }, 1000);
  }

  function stopUndoWindow() {
    if (countdown !== null) window.clearInterval(countdown);
    countdown = null;
  }

  document.addEventListener("htmx:load", function (event) {
    var bar = event.target;
    if (bar.id === "decisions" && bar.dataset.undoSeconds) startUndoWindow(bar);
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id === "undo-form") stopUndoWindow();
  });

  // A refused decision (400) answers a short message for the bar; keep django-htmx's DEBUG
  // handler, which listens on the document, from replacing the whole page with it.
  var main = document.querySelector("main");
  if (main) {
    main.addEventListener("htmx:beforeOnLoad", function (event) {
      var status = event.detail.xhr.status;
      if ((status === 400 || status === 409) && event.target.closest("#decisions")) {
        event.stopPropagation();
      }
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // In the step-rating mode the keys rate steps (static/js/step-ratings.js).
    if (document.getElementById("step-ratings")) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select")) return;
    var actions = {
      a: function () { click("approve"); },
      e: function () { open("edit-panel", "edit-thought"); },
      r: function () { open("reject-panel", "reject-reason"); },
      t: function () { open("return-panel", "return-comment"); },
      x: function () { open("reexpand-panel"); },
      u: function () { click("undo"); },
      n: function () { stopUndoWindow(); click("next"); },
      p: function () { history.back(); },
    };
    var action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });
})();
