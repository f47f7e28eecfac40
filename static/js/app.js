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

  document.addEventListener("DOMContentLoaded", function () { renderMath(document); });
  document.addEventListener("htmx:afterSwap", function (event) { renderMath(event.detail.target); });
})();
