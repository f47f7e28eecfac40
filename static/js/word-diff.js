// A word diff for the conflict view: which words of each version the other one lacks.
// A formula ($...$, \(...\), \[...\], $$...$$) counts as one word, so marking a change
// never cuts a formula in two and KaTeX can still render it.
(function () {
  "use strict";
  var TOKEN = /\$\$[\s\S]+?\$\$|\\\[[\s\S]+?\\\]|\\\([\s\S]+?\\\)|\$[^$\n]+\$|\s+|[^\s$]+|\$/g;
  var MAX_CELLS = 4000000;  // beyond this the middle is shown as wholly changed

  // Returns [aParts, bParts]; each part is {text, changed}.
  function wordDiff(a, b) {
    var x = a.match(TOKEN) || [], y = b.match(TOKEN) || [];
    var head = 0;
    while (head < x.length && head < y.length && x[head] === y[head]) head += 1;
    var tail = 0;
    while (tail < x.length - head && tail < y.length - head &&
           x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail += 1;
    var xs = x.slice(head, x.length - tail), ys = y.slice(head, y.length - tail);
    var keepX = new Array(xs.length).fill(false), keepY = new Array(ys.length).fill(false);
    if (xs.length * ys.length <= MAX_CELLS) common(xs, ys, keepX, keepY);
    function parts(all, middle, keep) {
      var out = all.slice(0, head).map(function (t) { return { text: t, changed: false }; });
      middle.forEach(function (t, i) { out.push({ text: t, changed: !keep[i] && /\S/.test(t) }); });
      all.slice(all.length - tail).forEach(function (t) { out.push({ text: t, changed: false }); });
      return out;
    }
    return [parts(x, xs, keepX), parts(y, ys, keepY)];
  }

  // Longest common subsequence, marking the tokens that both sides keep.
  function common(xs, ys, keepX, keepY) {
    var n = xs.length, m = ys.length, width = m + 1;
    var table = new Uint32Array((n + 1) * width);
    for (var i = n - 1; i >= 0; i--) {
      for (var j = m - 1; j >= 0; j--) {
        table[i * width + j] = xs[i] === ys[j] ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    for (i = 0, j = 0; i < n && j < m;) {
      if (xs[i] === ys[j]) { keepX[i++] = true; keepY[j++] = true; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) i++;
      else j++;
    }
  }

  window.journeyWordDiff = wordDiff;
})();
