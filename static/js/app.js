// Render LaTeX in Markdown blocks with KaTeX, on load and after every htmx swap.
(function () {
  "use strict";
  var delimiters = [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
    { left: "$", right: "$", display: false },
  ];

  function renderMath(root) {
    if (typeof window.renderMathInElement !== "function") return;
    root.querySelectorAll(".markdown").forEach(function (el) {
      window.renderMathInElement(el, { delimiters: delimiters, throwOnError: false });
    });
  }

  // An error answer the server addressed to a place on the page (HX-Reswap) is a message for
  // that place. Under DEBUG, django-htmx's script (listening on document) would show any 400
  // as a whole new page, without styles or the form; stopping the event at <body> keeps it
  // from seeing these answers, while tracebacks (500) and unaddressed errors still reach it.
  document.body.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("HX-Reswap")) {
      event.stopPropagation();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { renderMath(document); });
  document.addEventListener("htmx:afterSwap", function (event) { renderMath(event.detail.target); });
})();
