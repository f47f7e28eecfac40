// The annotation editor: autosave state, a local copy until the server has it, retries,
// time on task, and keyboard shortcuts. The saving itself is htmx (see editor.html).
(function () {
  "use strict";
  var form = document.getElementById("editor");
  if (!form) return;
  var status = document.getElementById("save-status");
  // Each tab keeps its own unsaved copy: a tab id lives in sessionStorage (it survives a
  // reload or a crash of that tab, not a new tab), the copy in localStorage under it.
  var tabId = sessionStorage.getItem("journey:tab");
  if (!tabId) {
    tabId = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    sessionStorage.setItem("journey:tab", tabId);
  }
  var copyPrefix = "journey:annotation:" + form.dataset.annotation;
  var storageKey = copyPrefix + ":" + tabId;
  // A live tab stamps the time every few seconds, so that a copy whose tab is gone (closed
  // before its save landed) can be told from one whose tab is still open.
  var ALIVE = "journey:tab-alive:";
  function beat() { try { localStorage.setItem(ALIVE + tabId, String(Date.now())); } catch (e) { /* full */ } }
  beat();
  setInterval(beat, 5000);
  window.addEventListener("pagehide", function () { localStorage.removeItem(ALIVE + tabId); });

  // The copy left by a closed tab (or by the one shared key of earlier versions) is taken over
  // by the next tab that opens the annotation, so that its text is offered, not lost.
  function takeOverOrphan() {
    for (var i = 0; i < localStorage.length; i++) {
      var key = localStorage.key(i);
      if (key !== copyPrefix && key.indexOf(copyPrefix + ":") !== 0) continue;
      var owner = key.slice(copyPrefix.length + 1);
      if (key === storageKey || Date.now() - Number(localStorage.getItem(ALIVE + owner) || 0) < 15000) continue;
      var copy = localStorage.getItem(key);
      localStorage.removeItem(key);
      localStorage.removeItem(ALIVE + owner);
      try { localStorage.setItem(storageKey, copy); } catch (e) { /* full */ }
      return true;
    }
    return false;
  }
  var edits = 0;          // bumps on every change
  var activeSeconds = 0;  // seconds of work not yet reported to the server
  var lastInput = Date.now();
  var retryTimer = null;

  function ours(elt) { return form.contains(elt) || elt.hasAttribute("data-restore-carrier"); }

  // The words the editor shows come from the page (data-msg-* attributes of the form,
  // rendered in the user's language by editor.html); the English is the fallback.
  function msg(key, english) { return form.dataset["msg" + key] || english; }

  function setStatus(text, cls) {
    status = document.getElementById("save-status");
    status.textContent = text;
    status.className = cls;
  }

  function formEntries() {
    var entries = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrfmiddlewaretoken" && name !== "elapsed") entries.push([name, value]);
    });
    return entries;
  }

  function content(entries) {
    return JSON.stringify(entries.filter(function (e) { return e[0] !== "version"; }));
  }

  function keepLocalCopy() {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ entries: formEntries(), at: Date.now() }));
    } catch (e) { /* storage full or disabled: the server copy still autosaves */ }
  }

  function dropLocalCopy() { localStorage.removeItem(storageKey); }

  form.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("#conflict")) return;
    edits += 1;
    lastInput = Date.now();
    keepLocalCopy();
    setStatus(msg("Unsaved", "Unsaved changes…"), "unsaved");
  });

  // Count a second of work when the page is visible and the annotator typed within a minute.
  setInterval(function () {
    if (document.visibilityState === "visible" && Date.now() - lastInput < 60000) activeSeconds += 1;
  }, 1000);

  // Requests of the editor carry the seconds worked since the last one; each remembers how
  // many edits it contained, so that its answer knows whether the screen has moved on since.
  var pending = null;
  // A restored copy that conflicts lives in this browser only: the form on screen shows the
  // saved version. "Keep mine" then sends that copy, the one the conflict view showed as yours.
  var conflictCopy = null;
  var RECORD_FIELDS = ["kind", "text", "notes", "final_answer"];
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (!ours(event.detail.elt) || event.detail.path.indexOf("/preview/") !== -1) return;
    if (conflictCopy && event.detail.elt.id === "keep-mine") {
      var params = event.detail.parameters;
      RECORD_FIELDS.forEach(function (name) { params.delete(name); });
      conflictCopy.forEach(function (entry) {
        if (RECORD_FIELDS.indexOf(entry[0]) !== -1) params.append(entry[0], entry[1]);
      });
    }
    event.detail.parameters.set("elapsed", activeSeconds);
    pending = { edits: edits, elapsed: activeSeconds };
    activeSeconds = 0;
    setStatus(msg("Saving", "Saving…"), "saving");
  });

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (pending && event.detail.xhr) {
      event.detail.xhr.journeySent = pending;
      pending = null;
    }
  });

  document.body.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var sent = xhr && xhr.journeySent;
    if (!sent) return;
    var code = xhr.status;
    if (code >= 200 && code < 300) {
      conflictCopy = null;
      if (edits === sent.edits) {
        dropLocalCopy();
      } else {
        keepLocalCopy();
        setStatus(msg("Unsaved", "Unsaved changes…"), "unsaved");
      }
      return;
    }
    activeSeconds += sent.elapsed;
    if (code === 409) {
      setStatus(msg("Conflict", "Conflict: choose a version below"), "error");
      var box = document.getElementById("conflict");
      if (box) box.scrollIntoView({ block: "center" });
      return;
    }
    if (code === 400) return;  // the server said what is wrong, on screen
    setStatus(msg("Offline", "Not saved (connection problem); kept in this browser, retrying…"), "error");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () { htmx.trigger(form, "save"); }, 3000);
  });

  document.body.addEventListener("click", function (event) {
    var link = event.target.closest("[data-discard-local]");
    if (link) dropLocalCopy();
  });

  // After a step is added, moved or deleted, put the cursor where the annotator expects it.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "editor-body") return;
    var list = document.getElementById("steps");
    if (list && list.dataset.focus !== undefined) focusStep(Number(list.dataset.focus));
  });

  function steps() { return Array.prototype.slice.call(form.querySelectorAll("#steps > .step")); }
  function currentIndex() {
    var step = document.activeElement && document.activeElement.closest(".step");
    return step ? steps().indexOf(step) : -1;
  }
  function focusStep(index) {
    var all = steps();
    if (!all.length) return;
    var step = all[Math.max(0, Math.min(index, all.length - 1))];
    step.querySelector("textarea[name=text]").focus();
  }

  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      event.preventDefault();
      htmx.trigger(form, "save");
      return;
    }
    if (!event.altKey) return;
    var index = currentIndex();
    if (event.key === "Enter") {
      event.preventDefault();
      var all = steps();
      var button = index >= 0 ? all[index].querySelector(".insert-below") : form.querySelector(".add-step");
      if (button) button.click();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      focusStep(index + (event.key === "ArrowDown" ? 1 : -1));
    } else if (/^[1-7]$/.test(event.key) && index >= 0) {
      event.preventDefault();
      var select = steps()[index].querySelector("select[name=kind]");
      select.selectedIndex = Number(event.key) - 1;
      select.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  // The conflict view marks the words each version has that the other lacks (steps pair by
  // position; the final answers are the last of each side), then renders their math.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "conflict") return;
    var box = event.detail.target;
    var mine = Array.prototype.slice.call(box.querySelectorAll(".conflict-mine .diff-text"));
    var saved = Array.prototype.slice.call(box.querySelectorAll(".conflict-saved .diff-text"));
    var pairs = [[mine.pop(), saved.pop()]];
    for (var i = 0; i < Math.max(mine.length, saved.length); i++) pairs.push([mine[i], saved[i]]);
    pairs.forEach(function (pair) {
      var parts = window.journeyWordDiff(pair[0] ? pair[0].textContent : "",
                                         pair[1] ? pair[1].textContent : "");
      if (pair[0]) showParts(pair[0], parts[0], "ins");
      if (pair[1]) showParts(pair[1], parts[1], "del");
    });
    window.journeyMath.render(box);
  });

  function showParts(el, parts, tag) {
    el.textContent = "";
    var mark = null;
    parts.forEach(function (part, i) {
      var next = parts[i + 1];
      if (part.changed || (mark && !/\S/.test(part.text) && next && next.changed)) {
        if (!mark) mark = el.appendChild(document.createElement(tag));
        mark.appendChild(document.createTextNode(part.text));
      } else {
        mark = null;
        el.appendChild(document.createTextNode(part.text));
      }
    });
    el.classList.add("markdown");
  }

  // Near a field's length limit the count shows (from 90%); a paste that does not fit is
  // cut by the browser without a word, so the paste handler says how much was left out.
  function showCount(field, cut) {
    var note = field.nextElementSibling;
    var hasNote = note && note.classList.contains("char-count");
    var max = field.maxLength;
    if (!cut && field.value.length < 0.9 * max) {
      if (hasNote) note.remove();
      return;
    }
    if (!hasNote) {
      note = document.createElement("span");
      note.className = "char-count";
      note.setAttribute("aria-live", "polite");
      field.insertAdjacentElement("afterend", note);
    }
    var number = function (n) { return n.toLocaleString("en"); };
    note.textContent = msg("Characters", "%(used)s / %(max)s characters")
      .replace("%(used)s", number(field.value.length)).replace("%(max)s", number(max));
    note.classList.toggle("full", field.value.length >= max);
    if (cut) {
      note.textContent += msg("PasteCut", ". The paste did not fit: its last %(cut)s characters were left out.")
        .replace("%(cut)s", number(cut));
    }
    field.journeyCut = cut;
  }

  form.addEventListener("paste", function (event) {
    var field = event.target;
    if (!(field.maxLength > 0) || !event.clipboardData) return;
    var pasted = event.clipboardData.getData("text").replace(/\r\n?/g, "\n");
    var room = field.maxLength - field.value.length + (field.selectionEnd - field.selectionStart);
    var cut = Math.max(0, pasted.length - room);
    setTimeout(function () { showCount(field, cut); }, 0);
  });

  form.addEventListener("input", function (event) {
    var field = event.target;
    if (!(field.maxLength > 0)) return;
    showCount(field, event.inputType === "insertFromPaste" ? field.journeyCut : 0);
  });

  function showAllCounts() {
    form.querySelectorAll("[maxlength]").forEach(function (field) { showCount(field, 0); });
  }
  showAllCounts();
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "editor-body") showAllCounts();
  });

  // A formula that does not close is worth a second look before submitting, not a refusal:
  // the first Submit shows the list, pressing it again submits as it is.
  var warnedFor = null;
  document.body.addEventListener("htmx:confirm", function (event) {
    if (event.detail.elt.id !== "submit-annotation") return;
    var broken = [];
    steps().forEach(function (step, index) {
      [["text", ""], ["notes", " " + msg("Notes", "(notes)")]].forEach(function (field) {
        var text = step.querySelector("textarea[name=" + field[0] + "]").value;
        window.journeyMath.brokenFormulas(text).forEach(function (formula) {
          broken.push(msg("Step", "Step %(number)s").replace("%(number)s", index + 1) + field[1] +
            ": " + formula);
        });
      });
    });
    var signature = broken.join("\n");
    if (!broken.length || signature === warnedFor) return;
    event.preventDefault();
    warnedFor = signature;
    var box = document.createElement("div");
    box.className = "warning";
    box.setAttribute("role", "alert");
    box.appendChild(document.createElement("p")).textContent =
      msg("Unbalanced", "These formulas do not close (unbalanced braces or delimiters), so they show as typed:");
    var list = box.appendChild(document.createElement("ul"));
    broken.forEach(function (item) {
      list.appendChild(document.createElement("li")).appendChild(document.createElement("code"))
        .textContent = item;
    });
    box.appendChild(document.createElement("p")).textContent =
      msg("SubmitAnyway", "Fix them, or press Submit again to submit as it is.");
    var messages = document.getElementById("submit-messages");
    messages.querySelectorAll(".warning").forEach(function (old) { old.remove(); });
    messages.prepend(box);
  });

  // A local copy that the server never acknowledged (crash, reload, lost connection) is
  // sent back as a save based on the version it was made from: it lands, or it conflicts.
  var stored = null;
  var orphan = !localStorage.getItem(storageKey) && takeOverOrphan();
  try { stored = JSON.parse(localStorage.getItem(storageKey) || "null"); } catch (e) { stored = null; }
  if (stored && stored.entries && content(stored.entries) !== content(formEntries())) {
    var carrier = document.createElement("form");
    carrier.hidden = true;
    carrier.setAttribute("data-restore-carrier", "1");
    stored.entries.concat([["op", "restore"], ["csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value]])
      .forEach(function (entry) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = entry[0];
        input.value = entry[1];
        carrier.appendChild(input);
      });
    document.body.appendChild(carrier);
    conflictCopy = stored.entries;
    setStatus(orphan ? msg("RestoringOrphan", "Restoring unsaved work left by a closed tab…") : msg("Restoring", "Restoring unsaved work from this browser…"), "saving");
    htmx.ajax("POST", form.dataset.stepsUrl, { source: carrier, target: "#editor-body" }).then(function () {
      carrier.remove();
    });
  } else if (stored) {
    dropLocalCopy();
  }
})();
