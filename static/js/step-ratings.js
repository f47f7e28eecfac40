// The review page's step-rating mode: j/k move between steps, 1/2/3 rate correctness
// (-1/0/+1), f/i/e/o tag faithfulness, n opens the step's note. Each change is saved at once
// by the step's htmx form (curation/ratings/markup.py); a save that fails for want
// of a connection is tried again every 3 s until it lands.
(function () {
  "use strict";
  var list = document.getElementById("step-ratings");
  if (!list) return;
  var CORRECTNESS = { "1": "-1", "2": "0", "3": "1" };
  var FAITHFULNESS = { f: "faithful", i: "invented", e: "early_fix", o: "off_record" };
  var STOP_KEY = "journey-stop-first-wrong";
  var stop = document.getElementById("stop-first-wrong");
  // The words shown come from the page (data-msg-* attributes of the list, rendered in the
  // user's language by review.html); the English is the fallback.
  function msg(key, english) { return list.dataset["msg" + key] || english; }
  var current = 0;

  function steps() { return Array.prototype.slice.call(list.querySelectorAll(".rated-step")); }

  function firstWrong() {
    var all = steps();
    for (var i = 0; i < all.length; i++) {
      var checked = all[i].querySelector("input[name=correctness]:checked");
      if (checked && checked.value === "-1") return i;
    }
    return -1;
  }

  // With "stop at the first wrong step", the steps after it are set aside, unrated.
  function showStop() {
    var wrong = stop && stop.checked ? firstWrong() : -1;
    steps().forEach(function (step, index) {
      step.classList.toggle("after-first-wrong", wrong !== -1 && index > wrong);
    });
    return wrong;
  }

  function select(index) {
    var all = steps();
    if (!all.length) return;
    var wrong = showStop();
    var last = wrong === -1 ? all.length - 1 : wrong;
    current = Math.max(0, Math.min(index, last));
    all.forEach(function (step, i) { step.classList.toggle("current", i === current); });
    all[current].scrollIntoView({ block: "nearest" });
  }

  function choose(name, value) {
    var step = steps()[current];
    var input = step && step.querySelector("input[name=" + name + "][value='" + value + "']");
    if (!input || input.checked) return;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    showStop();
  }

  list.addEventListener("click", function (event) {
    var step = event.target.closest(".rated-step");
    if (step) select(steps().indexOf(step));
  });
  list.addEventListener("change", showStop);

  if (stop) {
    stop.checked = window.localStorage.getItem(STOP_KEY) === "1";
    stop.addEventListener("change", function () {
      window.localStorage.setItem(STOP_KEY, stop.checked ? "1" : "0");
      select(current);
    });
  }

  var retryTimer = null;
  list.addEventListener("htmx:beforeRequest", function (event) {
    var status = event.target.querySelector && event.target.querySelector(".rating-status");
    if (status) { status.textContent = msg("Saving", "Saving…"); status.className = "rating-status saving"; }
  });
  list.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest && event.target.closest(".step-rating");
    var xhr = event.detail.xhr;
    if (!form || !xhr) return;
    var status = form.querySelector(".rating-status");
    if (xhr.status >= 200 && xhr.status < 300) {
      if (status) status.className = "rating-status saved";
      return;
    }
    if (xhr.status === 400 || xhr.status === 409) return;  // the form says what is wrong
    if (xhr.status === 403 || xhr.status === 404) {  // refused for good: say why, no retry
      if (status) {
        status.textContent = msg("NotSaved", "Not saved:") + " " +
          String(xhr.responseText || msg("Refused", "refused")).slice(0, 300);
        status.className = "rating-status error";
      }
      return;
    }
    if (status) {
      status.textContent = msg("Offline", "Not saved (connection problem); retrying…");
      status.className = "rating-status error";
    }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      if (document.body.contains(form)) htmx.trigger(form, "change");
    }, 3000);
  });
  // A refused save answers the form with a message; keep django-htmx's DEBUG handler from
  // replacing the page with it.
  list.addEventListener("htmx:beforeOnLoad", function (event) {
    var code = event.detail.xhr.status;
    if (code === 400 || code === 409) event.stopPropagation();
  });
  list.addEventListener("htmx:afterSwap", function () { select(current); });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("textarea, input[type=text], select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    var key = event.key;
    if (key === "j" || key === "k") {
      select(current + (key === "j" ? 1 : -1));
    } else if (CORRECTNESS[key] !== undefined) {
      choose("correctness", CORRECTNESS[key]);
    } else if (FAITHFULNESS[key] !== undefined) {
      choose("faithfulness", FAITHFULNESS[key]);
    } else if (key === "n") {
      var note = steps()[current] && steps()[current].querySelector("textarea[name=note]");
      if (note) note.focus();
    } else {
      return;
    }
    event.preventDefault();
  });

  select(0);
})();
