// One keystroke per decision on the review page (ignored while typing in a field).
(function () {
  "use strict";
  function open(id, focus) {
    var panel = document.getElementById(id);
    if (!panel) return;
    panel.open = true;
    var field = focus && document.getElementById(focus);
    if (field) field.focus();
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select")) return;
    var actions = {
      a: function () { var b = document.getElementById("approve"); if (b) b.click(); },
      e: function () { open("edit-panel", "edit-thought"); },
      r: function () { open("reject-panel", "reject-reason"); },
      t: function () { open("return-panel", "return-comment"); },
      x: function () { open("reexpand-panel"); },
      n: function () { document.getElementById("next").click(); },
      p: function () { history.back(); },
    };
    var action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });
})();
