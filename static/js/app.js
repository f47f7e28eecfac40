// Render LaTeX in Markdown blocks with KaTeX, on load and after every htmx swap, site-wide.
// Before KaTeX's auto-render runs, two things it cannot do are done here: a formula whose
// braces do not balance is marked (auto-render would otherwise leave everything after it raw,
// valid math included), and a bare \boxed{...} outside $...$ (as model solutions write it) is
// rendered as inline math.
(function () {
  "use strict";
  var delimiters = [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
    { left: "$", right: "$", display: false },
  ];
  var SKIP = "code, pre, script, textarea, .katex, .math-broken, .boxed";

  function balanced(tex) {
    var depth = 0;
    for (var i = 0; i < tex.length; i++) {
      if (tex[i] === "\\") { i += 1; continue; }
      if (tex[i] === "{") depth += 1;
      if (tex[i] === "}" && --depth < 0) return false;
    }
    return depth === 0;
  }

  // Formulas in a text, in order: {start, end, broken}. A lone "$" (a price) is text; an
  // opened \( or \[ or $$ that never closes is broken, as is a formula with unbalanced braces.
  function mathSpans(text) {
    var spans = [];
    var i = 0;
    while (i < text.length) {
      var ch = text[i];
      if (ch === "\\" && text[i + 1] !== "(" && text[i + 1] !== "[") { i += 2; continue; }
      var open = null;
      for (var d = 0; d < delimiters.length; d++) {
        if (text.startsWith(delimiters[d].left, i)) { open = delimiters[d]; break; }
      }
      if (!open) { i += 1; continue; }
      var from = i + open.left.length;
      var end = from;
      while (end < text.length && !text.startsWith(open.right, end)) end += text[end] === "\\" ? 2 : 1;
      if (end >= text.length) {
        if (open.left !== "$") spans.push({ start: i, end: text.length, broken: true });
        i = from;
        continue;
      }
      spans.push({ start: i, end: end + open.right.length, broken: !balanced(text.slice(from, end)) });
      i = end + open.right.length;
    }
    return spans;
  }

  function brokenFormulas(text) {
    return mathSpans(text).filter(function (s) { return s.broken; }).map(function (s) {
      return text.slice(s.start, s.end);
    });
  }

  // A bare \boxed{...} in a stretch of text outside math: [start, end) or null.
  function bareBoxed(text, from, to) {
    var at = text.indexOf("\\boxed{", from);
    if (at === -1 || at >= to) return null;
    var depth = 0;
    for (var i = at + 6; i < to; i++) {
      if (text[i] === "\\") { i += 1; continue; }
      if (text[i] === "{") depth += 1;
      if (text[i] === "}" && --depth === 0) return [at, i + 1];
    }
    return null;
  }

  function piecesOf(text) {
    var pieces = [];  // [start, end, "text" | "broken" | "boxed"]
    var last = 0;
    function plain(to) {
      var box;
      while ((box = bareBoxed(text, last, to))) {
        pieces.push([last, box[0], "text"], [box[0], box[1], "boxed"]);
        last = box[1];
      }
      pieces.push([last, to, "text"]);
      last = to;
    }
    mathSpans(text).forEach(function (span) {
      plain(span.start);
      pieces.push([span.start, span.end, span.broken ? "broken" : "text"]);
      last = span.end;
    });
    plain(text.length);
    return pieces;
  }

  function prepare(el) {
    var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    var nodes = [];
    while (walker.nextNode()) {
      var node = walker.currentNode;
      if (!node.parentElement.closest(SKIP) && /[\\$]/.test(node.nodeValue)) nodes.push(node);
    }
    nodes.forEach(function (node) {
      var text = node.nodeValue;
      var pieces = piecesOf(text);
      if (pieces.every(function (p) { return p[2] === "text"; })) return;
      var parts = document.createDocumentFragment();
      pieces.forEach(function (p) {
        var source = text.slice(p[0], p[1]);
        if (p[2] === "text") { if (source) parts.appendChild(document.createTextNode(source)); return; }
        var span = document.createElement("span");
        if (p[2] === "broken") {
          span.className = "math-broken";
          span.title = "This formula does not close (unbalanced braces or delimiters), so it is shown as typed.";
          span.textContent = source;
        } else {
          span.className = "boxed";
          window.katex.render(source, span, { throwOnError: false });
        }
        parts.appendChild(span);
      });
      node.parentNode.replaceChild(parts, node);
    });
  }

  function renderBlock(el) {
    prepare(el);
    window.renderMathInElement(el, {
      delimiters: delimiters, throwOnError: false, ignoredClasses: ["math-broken", "boxed"],
    });
  }

  // Renders the Markdown blocks in or around root (htmx may load an element inside a block).
  function renderMath(root) {
    if (typeof window.renderMathInElement !== "function" || !root.querySelectorAll) return;
    var around = root.closest && root.closest(".markdown");
    if (around) { renderBlock(around); return; }
    root.querySelectorAll(".markdown").forEach(renderBlock);
  }

  window.journeyMath = { render: renderMath, brokenFormulas: brokenFormulas };

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

  // htmx:load fires for the page once and for every element a swap brings in, whatever the
  // swap style (an outerHTML swap replaces its target, so afterSwap's target is gone).
  htmx.onLoad(renderMath);
})();
