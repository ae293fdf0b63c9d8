// The team inbox: list | thread | side panel, live over server-sent events, driven by keyboard or mouse.
// The server renders every fragment (escaped by Jinja); this script only fetches, places and wires them.
(function () {
  "use strict";
  var root = document.getElementById("inbox");
  if (!root) return;

  var csrf = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var list = document.getElementById("conversation-list");
  var threadPane = document.getElementById("thread");
  var panel = document.getElementById("panel");
  var filters = document.getElementById("filters");
  var searchInput = document.getElementById("search-input");
  var searchResults = document.getElementById("search-results");
  var base = root.getAttribute("data-base-url");
  var state = {
    selected: null, cursor: -1, replyTo: null, mode: "reply", canned: [], cannedIndex: 0,
    source: null, retry: 1000, listTimer: null, unread: parseInt(root.getAttribute("data-unread"), 10) || 0,
    pinned: true
  };

  // --- small helpers --------------------------------------------------------------------------
  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRFToken": csrf } };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function fragment(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      var total = response.headers.get("X-Unread-Total");
      if (total !== null) setUnread(parseInt(total, 10) || 0);
      return response.text();
    });
  }

  function conversationUrl(id, suffix) { return base + "c/" + id + (suffix || ""); }

  function el(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    return holder;
  }

  // times in the business's zone (Settings → General), in the server's 24-hour format
  // (sigdesk/general/clock.py FORMATS): "2026-12-06 21:34", "21:34", "2026-12-06"
  var zone = document.body.getAttribute("data-timezone") || undefined;
  var clockParts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23"
  });
  function wallClock(when) {
    var part = {};
    clockParts.formatToParts(when).forEach(function (p) { part[p.type] = p.value; });
    return part;
  }
  function format(when, style) {
    var part = wallClock(when);
    var date = part.year + "-" + part.month + "-" + part.day, time = part.hour + ":" + part.minute;
    return style === "date" ? date : style === "time" ? time : date + " " + time;
  }
  function dayOf(when) { return format(when, "date"); }
  // the moment the business's clock shows this date and time (a snooze picked as "tomorrow 9:00")
  function atBusinessTime(year, month, day, hour, minute) {
    var wanted = Date.UTC(year, month - 1, day, hour, minute), guess = wanted;
    for (var i = 0; i < 3; i++) {
      var p = wallClock(new Date(guess));
      guess += wanted - Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute);
    }
    return new Date(guess);
  }

  function localise(scope) {
    var now = new Date();
    scope.querySelectorAll("time[datetime]").forEach(function (node) {
      var value = node.getAttribute("datetime");
      if (!value) return;
      // SigDesk stores UTC without an offset; without one a browser would read its own zone
      var when = new Date(/(Z|[+-]\d\d:?\d\d)$/.test(value) || value.indexOf("T") < 0 ? value : value + "Z");
      if (isNaN(when)) return;
      var sameDay = dayOf(when) === dayOf(now);
      if (node.hasAttribute("data-relative")) node.textContent = format(when, sameDay ? "time" : "date");
      else node.textContent = format(when, node.hasAttribute("data-date") || !sameDay ? "datetime" : "time");
      node.title = format(when, "datetime") + (zone ? " (" + zone + ")" : "");
    });
  }

  // the side panel is a drawer below 1100 px: the thread's Details button opens it
  function setPanelOpen(open) {
    root.classList.toggle("panel-open", open);
    var toggle = threadPane.querySelector("[data-panel-toggle]");
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) { var close = panel.querySelector("[data-panel-close]"); if (close) close.focus(); }
  }

  root.addEventListener("click", function (event) {
    if (event.target.closest("[data-panel-toggle]")) setPanelOpen(!root.classList.contains("panel-open"));
    else if (event.target.closest("[data-panel-close]")) {
      setPanelOpen(false);
      var toggle = threadPane.querySelector("[data-panel-toggle]");
      if (toggle) toggle.focus();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && root.classList.contains("panel-open")) setPanelOpen(false);
  });

  function duration(ms) {
    var minutes = Math.max(0, Math.round(ms / 60000));
    var hours = Math.floor(minutes / 60);
    if (hours >= 48) return Math.floor(hours / 24) + " days";
    return hours ? hours + " h " + (minutes % 60) + " min" : minutes + " min";
  }

  function updateWindows() {
    var now = Date.now();
    document.querySelectorAll(".badge[data-window-closes]").forEach(function (node) {
      var closes = Date.parse(node.getAttribute("data-window-closes"));
      if (isNaN(closes)) return;
      var left = closes - now;
      var open = left > 0;
      node.classList.toggle("open", open);
      node.classList.toggle("closed", !open);
      if (node.id === "window-state") {
        node.textContent = open ? "24h window: " + duration(left) + " left" : "24h window closed " + duration(-left) + " ago";
      } else {
        node.textContent = open ? "24h · " + (left >= 3600000 ? Math.floor(left / 3600000) + "h" : Math.ceil(left / 60000) + "m") : "24h closed";
      }
    });
    var thread = threadPane.querySelector(".thread");
    if (thread && thread.getAttribute("data-window-open") === "1") {
      var closesAt = Date.parse(thread.getAttribute("data-window-closes"));
      if (!isNaN(closesAt) && closesAt <= now) reloadThread(false);  // the window just closed: offer templates
    }
  }

  function setUnread(total) {
    state.unread = total;
    var badge = document.getElementById("unread-total");
    var nav = document.getElementById("nav-unread");
    if (badge) { badge.textContent = total + " unread"; badge.hidden = !total; }
    if (nav) { nav.textContent = String(total); nav.hidden = !total; }
    document.title = (total ? "(" + total + ") " : "") + "Inbox · SigDesk";
  }

  function showError(scope, message) {
    var target = scope && scope.querySelector(".composer-error, .panel-error");
    if (target) target.textContent = message || "";
    else if (message) window.alert(message);
  }

  // --- the conversation list ------------------------------------------------------------------
  function filterQuery() {
    var params = new URLSearchParams();
    new FormData(filters).forEach(function (value, key) { if (value) params.set(key, value); });
    return params;
  }

  function rows() { return Array.prototype.slice.call(list.querySelectorAll("li.conv")); }

  function loadList() {
    var params = filterQuery();
    return fragment(root.getAttribute("data-list-url") + "?" + params.toString()).then(function (html) {
      list.innerHTML = html;
      afterList();
    }).catch(function () { /* the live state shows the server is unreachable */ });
  }

  function scheduleList() {
    clearTimeout(state.listTimer);
    state.listTimer = setTimeout(loadList, 120);
  }

  function afterList() {
    localise(list);
    updateWindows();
    var all = rows();
    state.cursor = -1;
    all.forEach(function (row, index) {
      var selected = String(state.selected) === row.getAttribute("data-id");
      row.setAttribute("aria-selected", selected ? "true" : "false");
      row.classList.toggle("selected", selected);
      if (selected) state.cursor = index;
    });
  }

  function highlight(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("cursor"); });
    all[index].classList.add("cursor");
    all[index].scrollIntoView({ block: "nearest" });
    state.cursor = index;
  }

  filters.addEventListener("change", function () {
    var params = filterQuery();
    if (state.selected) params.set("c", state.selected);
    history.replaceState(null, "", base + "?" + params.toString());
    loadList();
  });

  list.addEventListener("click", function (event) {
    var more = event.target.closest("button[data-before]");
    if (more) {
      var params = filterQuery();
      params.set("before", more.getAttribute("data-before"));
      more.disabled = true;
      fragment(root.getAttribute("data-list-url") + "?" + params.toString()).then(function (html) {
        var item = more.closest("li");
        var holder = el(html);
        while (holder.firstChild) list.insertBefore(holder.firstChild, item);
        item.remove();
        afterList();
      });
      return;
    }
    var row = event.target.closest("li.conv");
    if (!row) return;
    event.preventDefault();
    open(row.getAttribute("data-id"));
  });

  // --- the thread -----------------------------------------------------------------------------
  function messagesBox() { return threadPane.querySelector("#messages"); }
  function openThread() { return threadPane.querySelector(".thread"); }

  function open(id, around) {
    state.selected = String(id);
    state.replyTo = null;
    root.classList.remove("panel-open");
    var url = conversationUrl(id) + (around ? "?around=" + encodeURIComponent(around) : "");
    var params = filterQuery();
    params.set("c", id);
    if (around) params.set("m", around);
    history.replaceState(null, "", base + "?" + params.toString());
    afterList();
    return fragment(url).then(function (html) {
      if (state.selected !== String(id)) return;
      threadPane.innerHTML = html;
      afterThread(around);
      loadPanel();
      markRead();
    }).catch(function () {
      showInstead("empty-state", "This conversation cannot be opened (it may be assigned to someone else now).");
    });
  }

  function showInstead(className, text) {
    // a note in place of the thread, and an empty side panel
    threadPane.innerHTML = "";
    var note = document.createElement("div");
    note.className = className;
    note.textContent = text;
    threadPane.appendChild(note);
    panel.innerHTML = "";
  }

  function afterThread(around) {
    var box = messagesBox();
    if (!box) return;
    localise(threadPane);
    updateWindows();
    setMode(state.mode);
    var focus = around && document.getElementById("msg-" + around);
    if (focus) {
      state.pinned = false;
      focus.classList.add("focus");
      focus.scrollIntoView({ block: "center" });
    } else {
      state.pinned = true;
      toBottom(box);
    }
    keepPinned(box);
  }

  // Images and videos get their height only once loaded: stay at the newest message while they do,
  // unless the reader has scrolled up.
  function nearBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 80; }

  function toBottom(box) { box.scrollTop = box.scrollHeight; }

  // Only a scroll the reader made unpins the thread. Scroll events also come from SigDesk's own scrolling
  // (reported late, after more images grew the thread) and from the browser keeping the view steady while
  // images above load; a wheel, touch, pointer or key in the last second tells the reader's apart.
  var readerScrolledAt = 0;
  var SCROLL_KEYS = ["PageUp", "PageDown", "ArrowUp", "ArrowDown", "Home", "End", " "];
  function readerScrolls(event) {
    if (event.type !== "keydown" || SCROLL_KEYS.indexOf(event.key) >= 0) readerScrolledAt = Date.now();
  }
  document.addEventListener("keydown", readerScrolls, true);

  function keepPinned(box) {
    ["wheel", "touchmove", "pointerdown"].forEach(function (name) {
      box.addEventListener(name, readerScrolls, { passive: true });
    });
    box.addEventListener("scroll", function () {
      if (nearBottom(box)) state.pinned = true;
      else if (Date.now() - readerScrolledAt < 1000) state.pinned = false;
    }, { passive: true });
    function settle() { if (state.pinned && box.isConnected) toBottom(box); }
    box.addEventListener("load", settle, true);
    box.addEventListener("loadedmetadata", settle, true);
    // a message's height also changes without a load event (the thread narrows when the side panel is
    // redrawn, a decoded image takes its size): stay at the newest whenever the messages resize
    if (window.ResizeObserver) {
      var watcher = new ResizeObserver(settle);
      watcher.observe(box);
      Array.prototype.forEach.call(box.children, function (child) { watcher.observe(child); });
    }
  }

  function reloadThread(keepComposer) {
    if (!state.selected) return;
    var text = threadPane.querySelector("#composer-text");
    var draft = text ? text.value : "";
    var id = state.selected;
    fragment(conversationUrl(id)).then(function (html) {
      if (state.selected !== id) return;
      threadPane.innerHTML = html;
      afterThread();
      var again = threadPane.querySelector("#composer-text");
      if (again && keepComposer !== false) again.value = draft;
    }).catch(function () { lost(id); });
  }

  function lost(id) {
    // the conversation left this person's view (assigned to someone else, or merged into another contact's)
    if (state.selected !== String(id)) return;
    showInstead("empty-state lost", "This conversation is no longer visible to you (it was assigned to someone else or merged into another).");
    state.selected = null;
    scheduleList();
  }

  function loadPanel() {
    if (!state.selected) return;
    var id = state.selected;
    fragment(conversationUrl(id, "/panel")).then(function (html) {
      if (state.selected !== id) return;
      panel.innerHTML = html;
      localise(panel);
    }).catch(function () { lost(id); });
  }

  function markRead() {
    var thread = openThread();
    if (!thread || thread.getAttribute("data-unread") === "0") return;
    if (document.visibilityState !== "visible") return;  // visibilitychange marks it once seen
    thread.setAttribute("data-unread", "0");
    var id = thread.getAttribute("data-conversation-id");
    function unsent() {
      // a busy or restarting server: keep the thread unread and try again shortly
      var still = openThread();
      if (!still || still.getAttribute("data-conversation-id") !== id) return;
      still.setAttribute("data-unread", "1");
      setTimeout(markRead, 2000);
    }
    request("POST", conversationUrl(id, "/read"), {}).then(function (result) {
      if (!result.ok && result.status !== 404 && result.status !== 403) { unsent(); return; }
      scheduleList();
    }, unsent);
  }

  function lastMessageId() {
    var all = threadPane.querySelectorAll(".msg[data-id]");
    var highest = 0;
    all.forEach(function (node) { highest = Math.max(highest, parseInt(node.getAttribute("data-id"), 10) || 0); });
    return highest;
  }

  function appendNew() {
    var box = messagesBox();
    if (!box || !state.selected) return Promise.resolve();
    var id = state.selected;
    var atBottom = state.pinned || nearBottom(box);
    if (box.querySelector("[data-jump-latest]")) return Promise.resolve();  // reading older history: leave it
    return fragment(conversationUrl(id, "/messages?after=" + lastMessageId())).then(function (html) {
      if (state.selected !== id) return;
      var holder = el(html);
      holder.querySelectorAll("[id]").forEach(function (node) {
        var existing = document.getElementById(node.id);
        if (existing) existing.remove();
      });
      localise(holder);
      var arrived = holder.querySelector(".msg.in");
      while (holder.firstChild) box.appendChild(holder.firstChild);
      if (atBottom) { state.pinned = true; toBottom(box); }
      var thread = openThread();
      if (arrived && thread) { thread.setAttribute("data-unread", "1"); markRead(); }
    }).catch(function () { lost(id); });
  }

  function replaceMessage(conversationId, messageId) {
    var node = document.getElementById("msg-" + messageId);
    if (!node) return;
    fragment(conversationUrl(conversationId, "/messages/" + messageId)).then(function (html) {
      var holder = el(html);
      var fresh = holder.querySelector("#msg-" + messageId);
      if (fresh && node.parentNode) { localise(holder); node.replaceWith(fresh); }
    }).catch(function () { /* gone from view: nothing to refresh */ });
  }

  function appendNote(conversationId, noteId) {
    var box = messagesBox();
    if (!box || document.getElementById("note-" + noteId)) return;
    fragment(conversationUrl(conversationId, "/notes/" + noteId)).then(function (html) {
      if (document.getElementById("note-" + noteId)) return;
      var holder = el(html);
      localise(holder);
      while (holder.firstChild) box.appendChild(holder.firstChild);
      toBottom(box);
    }).catch(function () { lost(conversationId); });
  }

  function setMode(mode) {
    state.mode = mode;
    var composer = threadPane.querySelector("#composer");
    if (!composer) return;
    composer.setAttribute("data-mode", mode);
    composer.querySelectorAll(".tab").forEach(function (tab) {
      tab.setAttribute("aria-selected", tab.getAttribute("data-mode") === mode ? "true" : "false");
    });
    var text = composer.querySelector("#composer-text");
    var windowOpen = openThread().getAttribute("data-window-open") === "1";
    if (text) text.placeholder = mode === "note" ? "Write a private note for the team (never sent to the customer)…"
      : windowOpen ? "Write a reply… ( / for canned responses, Ctrl+Enter sends)" : "Write a private note for the team…";
  }

  function setReplyTo(message) {
    var bar = threadPane.querySelector("#reply-to");
    if (!bar) return;
    state.replyTo = message ? { wamid: message.getAttribute("data-wamid"), text: message.getAttribute("data-quote") } : null;
    bar.hidden = !state.replyTo;
    threadPane.querySelector("#reply-to-text").textContent = state.replyTo ? state.replyTo.text : "";
    if (state.replyTo) threadPane.querySelector("#composer-text").focus();
  }

  function submitComposer() {
    var thread = openThread();
    var form = threadPane.querySelector("#composer-form");
    if (!thread || !form) return;
    var id = thread.getAttribute("data-conversation-id");
    var text = form.querySelector("#composer-text");
    var file = form.querySelector("#attach-input");
    var body = text.value.trim();
    var windowOpen = thread.getAttribute("data-window-open") === "1";
    var note = state.mode === "note" || !windowOpen;
    var done;
    showError(form, "");
    if (note) {
      if (!body) return;
      done = request("POST", conversationUrl(id, "/notes"), { body: body });
    } else if (file.files.length) {
      var picked = file.files[0];
      var problem = checkFile(picked);
      if (problem) { showError(form, problem); return; }
      var data = new FormData();
      data.append("file", picked);
      data.append("caption", body);
      if (state.replyTo) data.append("reply_to", state.replyTo.wamid);
      done = request("POST", conversationUrl(id, "/attachment"), data);
    } else {
      if (!body) return;
      var payload = { text: body };
      if (state.replyTo) payload.reply_to = state.replyTo.wamid;
      done = request("POST", conversationUrl(id, "/send"), payload);
    }
    form.querySelector("#send-button").disabled = true;
    done.then(function (result) {
      form.querySelector("#send-button").disabled = false;
      if (!result.ok) { showError(form, result.data.error || "Not sent (error " + result.status + ")"); return; }
      text.value = "";
      file.value = "";
      form.querySelector("#attachment-name").textContent = "";
      setReplyTo(null);
      if (result.data.note_id) appendNote(id, result.data.note_id);
      else appendNew();
      scheduleList();
    });
  }

  var LIMITS = { image: 5, audio: 16, video: 16, sticker: 0.5, document: 100 };
  var KINDS = { "image/jpeg": "image", "image/png": "image", "audio/aac": "audio", "audio/amr": "audio", "audio/mpeg": "audio",
    "audio/mp4": "audio", "audio/ogg": "audio", "video/mp4": "video", "video/3gpp": "video", "image/webp": "sticker" };

  function checkFile(file) {
    var kind = KINDS[file.type] || "document";
    if (!file.size) return "The file is empty.";
    if (file.size > LIMITS[kind] * 1024 * 1024) return "WhatsApp takes " + kind + "s up to " + LIMITS[kind] + " MB; this one is " + (file.size / 1048576).toFixed(1) + " MB.";
    if (/\.(exe|bat|cmd|com|msi|scr|js|vbs|jar|sh)$/i.test(file.name)) return "Programs cannot be sent.";
    return null;
  }

  // canned responses: "/shortcut" at the start of the composer
  function cannedMatches(text) {
    var match = /^\/([a-z0-9_-]*)$/i.exec(text);
    if (!match) return [];
    var prefix = match[1].toLowerCase();
    return state.canned.filter(function (item) { return item.shortcut.indexOf(prefix) === 0; }).slice(0, 8);
  }

  function showCanned(text) {
    var menu = threadPane.querySelector("#canned-menu");
    if (!menu) return;
    var found = cannedMatches(text);
    menu.innerHTML = "";
    state.cannedIndex = 0;
    found.forEach(function (item, index) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.setAttribute("data-index", String(index));
      li.className = index === 0 ? "active" : "";
      var key = document.createElement("strong");
      key.textContent = "/" + item.shortcut;
      var body = document.createElement("span");
      body.textContent = " " + item.body.slice(0, 80);
      li.appendChild(key);
      li.appendChild(body);
      menu.appendChild(li);
    });
    menu.hidden = !found.length;
    menu.matches = found;
  }

  function useCanned(index) {
    var menu = threadPane.querySelector("#canned-menu");
    var text = threadPane.querySelector("#composer-text");
    var item = menu && menu.matches && menu.matches[index];
    if (!item) return;
    var thread = openThread();
    text.value = item.body.replace(/\{\{\s*name\s*\}\}/g, thread.getAttribute("data-contact-name") || "")
      .replace(/\{\{\s*agent\s*\}\}/g, root.getAttribute("data-user-name") || "");
    menu.hidden = true;
    text.focus();
  }

  function loadCanned() {
    request("GET", root.getAttribute("data-canned-url")).then(function (result) {
      if (result.ok) state.canned = result.data.canned || [];
    });
  }

  // the template composer, when the 24-hour window is closed
  function templateFields(select) {
    var holder = threadPane.querySelector("#template-fields");
    var preview = threadPane.querySelector("#template-preview");
    holder.innerHTML = "";
    var option = select.selectedOptions[0];
    if (!option || !option.value) { preview.hidden = true; return; }
    var variables = {};
    try { variables = JSON.parse(option.getAttribute("data-variables") || "{}"); } catch (error) { variables = {}; }
    ["header", "body"].forEach(function (part) {
      for (var n = 1; n <= (variables[part] || 0); n++) {
        var label = document.createElement("label");
        label.textContent = (part === "header" ? "Header " : "Body ") + "{{" + n + "}}";
        var input = document.createElement("input");
        input.name = part + "-" + n;
        input.required = true;
        input.maxLength = 1024;
        input.setAttribute("data-part", part);
        label.appendChild(input);
        holder.appendChild(label);
      }
    });
    renderPreview();
  }

  function renderPreview() {
    var select = threadPane.querySelector("#template-select");
    var preview = threadPane.querySelector("#template-preview");
    var option = select && select.selectedOptions[0];
    if (!option || !option.value) return;
    function fill(text, part) {
      return (text || "").replace(/\{\{\s*(\d+)\s*\}\}/g, function (whole, n) {
        var input = threadPane.querySelector("#template-fields input[name='" + part + "-" + n + "']");
        return input && input.value ? input.value : whole;
      });
    }
    var header = fill(option.getAttribute("data-header"), "header");
    preview.textContent = (header ? header + "\n" : "") + fill(option.getAttribute("data-body"), "body");
    preview.hidden = false;
  }

  function submitTemplate(form) {
    var thread = openThread();
    var select = form.querySelector("#template-select");
    if (!select.value) return;
    var params = { header: [], body: [] };
    form.querySelectorAll("#template-fields input").forEach(function (input) {
      params[input.getAttribute("data-part")].push(input.value);
    });
    request("POST", conversationUrl(thread.getAttribute("data-conversation-id"), "/template"),
      { template_id: parseInt(select.value, 10), params: params }).then(function (result) {
      if (!result.ok) { showError(form, result.data.error || "Not sent"); return; }
      showError(form, "");
      select.value = "";
      templateFields(select);
      appendNew();
      scheduleList();
    });
  }

  function emojiPicker(target, onPick) {
    var picker = threadPane.querySelector("#emoji-picker");
    if (!picker) return;
    if (!picker.hidden && picker.onPick === onPick) { picker.hidden = true; return; }
    picker.innerHTML = document.getElementById("emoji-list").innerHTML;
    picker.onPick = onPick;
    picker.hidden = false;
  }

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || 0;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
    textarea.focus();
  }

  function assign(value) {
    var thread = openThread();
    if (!thread) return;
    request("POST", conversationUrl(thread.getAttribute("data-conversation-id"), "/assign"), { assignee_id: value }).then(function (result) {
      if (!result.ok) { showError(panel, result.data.error); return; }
      refreshHead();
      loadPanel();
      scheduleList();
    });
  }

  function setStatus(status, until) {
    var thread = openThread();
    if (!thread) return;
    var body = { status: status };
    if (until) body.snoozed_until = until;
    request("POST", conversationUrl(thread.getAttribute("data-conversation-id"), "/status"), body).then(function (result) {
      if (!result.ok) { showError(panel, result.data.error); return; }
      reloadThread();
      loadPanel();
      scheduleList();
    });
  }

  threadPane.addEventListener("click", function (event) {
    var target = event.target;
    var thread = openThread();
    if (!thread) return;
    var id = thread.getAttribute("data-conversation-id");
    var older = target.closest("button[data-before]");
    if (older) {
      var box = messagesBox();
      var height = box.scrollHeight;
      older.disabled = true;
      fragment(conversationUrl(id, "/messages?before=" + older.getAttribute("data-before"))).then(function (html) {
        var holder = el(html);
        localise(holder);
        var wrapper = older.closest(".older");
        var anchor = wrapper.nextSibling;
        var remaining = holder.querySelector(".older");
        while (holder.firstChild) box.insertBefore(holder.firstChild, anchor);
        wrapper.remove();
        if (remaining) box.insertBefore(remaining, box.firstChild);
        box.scrollTop = box.scrollHeight - height;
      });
      return;
    }
    if (target.closest("[data-jump-latest]")) { open(id); return; }
    var jump = target.closest("[data-jump]");
    if (jump) {
      event.preventDefault();
      var found = document.getElementById("msg-" + jump.getAttribute("data-jump"));
      if (found) { found.scrollIntoView({ block: "center" }); found.classList.add("focus"); }
      else open(id, jump.getAttribute("data-jump"));
      return;
    }
    var tab = target.closest(".tab");
    if (tab) { setMode(tab.getAttribute("data-mode")); threadPane.querySelector("#composer-text").focus(); return; }
    var action = target.closest("[data-action]");
    if (action) {
      var kind = action.getAttribute("data-action");
      var message = action.closest(".msg");
      if (kind === "reply") setReplyTo(message);
      else if (kind === "react") {
        emojiPicker(action, function (emoji) {
          request("POST", conversationUrl(id, "/react"), { message_id: parseInt(message.getAttribute("data-id"), 10), emoji: emoji })
            .then(function (result) {
              if (!result.ok) showError(threadPane.querySelector("#composer-form"), result.data.error);
              else replaceMessage(id, message.getAttribute("data-id"));
            });
        });
      } else if (kind === "retry") {
        request("POST", "/api/v1/conversations/" + id + "/messages/" + action.getAttribute("data-message-id") + "/retry", {})
          .then(function (result) {
            if (!result.ok) showError(threadPane.querySelector("#composer-form"), result.data.error);
            else replaceMessage(id, action.getAttribute("data-message-id"));
          });
      } else if (kind === "assign-me") assign("me");
      else if (kind === "status") setStatus(action.getAttribute("data-status"));
      return;
    }
    if (target.closest("#reply-cancel")) { setReplyTo(null); return; }
    if (target.closest("#emoji-button")) {
      emojiPicker(target, function (emoji) { insertAtCursor(threadPane.querySelector("#composer-text"), emoji); });
      return;
    }
    var emoji = target.closest("button.emoji");
    if (emoji) {
      var picker = threadPane.querySelector("#emoji-picker");
      picker.hidden = true;
      if (picker.onPick) picker.onPick(emoji.getAttribute("data-emoji"));
      return;
    }
    var canned = target.closest("#canned-menu li");
    if (canned) useCanned(parseInt(canned.getAttribute("data-index"), 10));
  });

  threadPane.addEventListener("submit", function (event) {
    event.preventDefault();
    if (event.target.id === "composer-form") submitComposer();
    else if (event.target.id === "template-form") submitTemplate(event.target);
  });

  threadPane.addEventListener("change", function (event) {
    if (event.target.id === "template-select") templateFields(event.target);
    if (event.target.id === "attach-input") {
      var file = event.target.files[0];
      var form = threadPane.querySelector("#composer-form");
      form.querySelector("#attachment-name").textContent = file ? file.name : "";
      showError(form, file ? checkFile(file) : "");
    }
  });

  threadPane.addEventListener("input", function (event) {
    if (event.target.id === "composer-text") showCanned(event.target.value);
    if (event.target.closest("#template-fields")) renderPreview();
  });

  threadPane.addEventListener("keydown", function (event) {
    if (event.target.id !== "composer-text") return;
    var menu = threadPane.querySelector("#canned-menu");
    if (menu && !menu.hidden) {
      var items = menu.querySelectorAll("li");
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        state.cannedIndex = (state.cannedIndex + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        items.forEach(function (item, index) { item.className = index === state.cannedIndex ? "active" : ""; });
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); useCanned(state.cannedIndex); return; }
      if (event.key === "Escape") { menu.hidden = true; return; }
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submitComposer(); }
  });

  panel.addEventListener("change", function (event) {
    if (event.target.id === "assign-select") assign(event.target.value ? parseInt(event.target.value, 10) : null);
    var label = event.target.getAttribute("data-label-id");
    if (label) {
      var thread = openThread();
      request("POST", conversationUrl(thread.getAttribute("data-conversation-id"), "/labels"),
        { label_id: parseInt(label, 10), on: event.target.checked }).then(scheduleList);
    }
  });

  panel.addEventListener("click", function (event) {
    var action = event.target.closest("[data-action=status]");
    if (action) { setStatus(action.getAttribute("data-status")); return; }
    var quick = event.target.closest("[data-snooze]");
    if (quick) {
      var when = new Date(Date.now() + 3600000);
      if (quick.getAttribute("data-snooze") !== "1h") {
        var today = wallClock(new Date()), tomorrow = new Date(Date.UTC(+today.year, +today.month - 1, +today.day + 1));
        when = atBusinessTime(tomorrow.getUTCFullYear(), tomorrow.getUTCMonth() + 1, tomorrow.getUTCDate(), 9, 0);
      }
      setStatus("snoozed", when.toISOString());
    }
  });

  panel.addEventListener("submit", function (event) {
    event.preventDefault();
    if (event.target.id === "panel-contact-form") { saveContact(event.target); return; }
    var value = event.target.querySelector("input[name=until]").value;
    // the picker's date and time are on the business's clock, like every time on the page
    var picked = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(value);
    var when = picked && atBusinessTime(+picked[1], +picked[2], +picked[3], +picked[4], +picked[5]);
    if (!when || isNaN(when)) { showError(panel, "Choose a date and time."); return; }
    setStatus("snoozed", when.toISOString());
  });

  // the contact's record, edited in the panel (the contact page edits the rest with the same command)
  function saveContact(form) {
    var error = form.querySelector(".panel-error");
    error.textContent = "";
    form.querySelectorAll("[aria-invalid]").forEach(function (input) { input.removeAttribute("aria-invalid"); });
    var body = {};
    ["name", "email", "company", "stage"].forEach(function (name) {
      var input = form.querySelector('[name="' + name + '"]');
      if (input) body[name] = input.value;
    });
    if (form.querySelector("[name=tags_present]")) {
      body.tags = Array.prototype.map.call(form.querySelectorAll("input[name=tags]:checked"), function (box) { return box.value; });
    }
    request("POST", form.action, body)
      .then(function (result) {
        if (result.ok) { loadPanel(); return; }
        var field = result.data.field && form.querySelector('[name="' + result.data.field + '"]');
        if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
        error.textContent = result.data.error || "Not saved.";
      })
      .catch(function () { error.textContent = "Not saved: SigDesk cannot be reached."; });
  }

  function contactChanged(contactId) {
    // the open panel shows this contact: read it again, unless someone is typing in its edit form
    var shown = panel.querySelector(".panel[data-contact-id]");
    if (!shown || shown.getAttribute("data-contact-id") !== String(contactId)) return;
    if (typingInPanel()) return;
    loadPanel();
  }

  function typingInPanel() {
    // the contact's edit form, or an order being written (orders.js), holds what someone is typing
    var open = panel.querySelectorAll("#panel-contact-edit[open], [data-orders] details[open]");
    return Array.prototype.some.call(open, function (box) { return box.contains(document.activeElement); });
  }

  // --- search ---------------------------------------------------------------------------------
  var searchTimer = null;

  function marked(snippet) {
    // The snippet is escaped text with <mark> around hits; keep only those marks, inertly parsed.
    var doc = new DOMParser().parseFromString("<body>" + (snippet || "") + "</body>", "text/html");
    var out = document.createDocumentFragment();
    doc.body.childNodes.forEach(function (node) {
      if (node.nodeType === 1 && node.nodeName === "MARK") {
        var mark = document.createElement("mark");
        mark.textContent = node.textContent;
        out.appendChild(mark);
      } else {
        out.appendChild(document.createTextNode(node.textContent));
      }
    });
    return out;
  }

  function search(query) {
    if (!query.trim()) { searchResults.hidden = true; searchResults.innerHTML = ""; return; }
    var url = root.getAttribute("data-search-url") + "?limit=20&q=" + encodeURIComponent(query);
    request("GET", url).then(function (result) {
      if (searchInput.value !== query) return;
      searchResults.innerHTML = "";
      if (!result.ok) {
        var problem = document.createElement("p");
        problem.className = "muted small";
        problem.textContent = result.data.error || "Search is not available.";
        searchResults.appendChild(problem);
        searchResults.hidden = false;
        return;
      }
      var contacts = result.data.contacts || [];
      var messages = result.data.messages || [];
      var listing = document.createElement("ul");
      contacts.forEach(function (item) {
        var li = document.createElement("li");
        li.className = "hit contact-hit";
        li.setAttribute("data-conversation-id", item.conversation_id);
        li.textContent = "👤 " + (item.name || item.wa_id || "Contact") + (item.wa_id ? " · +" + item.wa_id : "");
        listing.appendChild(li);
      });
      messages.forEach(function (item) {
        var li = document.createElement("li");
        li.className = "hit message-hit";
        li.setAttribute("data-conversation-id", item.conversation_id);
        li.setAttribute("data-message-id", item.message_id);
        var who = document.createElement("strong");
        who.textContent = item.contact_name || "Conversation " + item.conversation_id;
        var when = document.createElement("time");
        when.setAttribute("datetime", item.timestamp || "");
        when.setAttribute("data-relative", "");
        var snippet = document.createElement("div");
        snippet.className = "snippet";
        snippet.appendChild(marked(item.snippet_html));
        li.appendChild(who);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(when);
        li.appendChild(snippet);
        listing.appendChild(li);
      });
      if (!contacts.length && !messages.length) {
        var none = document.createElement("li");
        none.className = "muted small";
        none.textContent = "Nothing found.";
        listing.appendChild(none);
      }
      searchResults.appendChild(listing);
      localise(searchResults);
      searchResults.hidden = false;
    });
  }

  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    search(searchInput.value);
  });
  searchInput.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { search(searchInput.value); }, 250);
  });
  searchResults.addEventListener("click", function (event) {
    var hit = event.target.closest(".hit");
    if (!hit) return;
    open(hit.getAttribute("data-conversation-id"), hit.getAttribute("data-message-id"));
  });

  // --- live updates ---------------------------------------------------------------------------
  function liveState(text, ok) {
    var node = document.getElementById("live-state");
    if (!node) return;
    node.title = text;
    node.classList.toggle("live-ok", !!ok);
    node.classList.toggle("live-off", !ok);
  }

  function connect(fresh) {
    if (!window.EventSource) return;
    var source = new EventSource(root.getAttribute("data-events-url"));
    state.source = source;
    source.onopen = function () {
      state.retry = 1000;
      liveState("Live updates on", true);
      if (fresh) { fresh = false; loadList(); if (state.selected) { appendNew(); loadPanel(); } }
    };
    source.onerror = function () {
      liveState("Reconnecting…", false);
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (e.g. the server restarted): start over and catch up by reloading
        setTimeout(function () { connect(true); }, state.retry);
        state.retry = Math.min(state.retry * 2, 30000);
      }
    };
    function on(kind, handler) {
      source.addEventListener(kind, function (event) {
        var data = {};
        try { data = JSON.parse(event.data || "{}"); } catch (error) { data = {}; }
        handler(data);
      });
    }
    on("message.created", function (data) {
      scheduleList();
      var isOpen = String(data.conversation_id) === state.selected;
      if (isOpen) appendNew();
      alertIfInbound(data, isOpen);
    });
    on("message.updated", function (data) {
      scheduleList();
      if (String(data.conversation_id) === state.selected) replaceMessage(data.conversation_id, data.message_id);
    });
    on("conversation.updated", function (data) {
      scheduleList();
      if (String(data.conversation_id) === state.selected) { if (!typingInPanel()) loadPanel(); refreshHead(); }
    });
    on("contact.updated", function (data) { contactChanged(data.contact_id); });
    on("note.created", function (data) {
      if (String(data.conversation_id) === state.selected) appendNote(data.conversation_id, data.note_id);
    });
    on("resync", function () {
      loadList();
      if (state.selected) reloadThread();
    });
  }

  function refreshHead() {
    // status, assignment and the 24-hour window live in the header and composer; keep a draft if there is one
    var thread = openThread();
    if (!thread) return;
    var id = state.selected;
    fragment(conversationUrl(id)).then(function (html) {
      if (state.selected !== id) return;
      var holder = el(html);
      var fresh = holder.querySelector(".thread");
      var current = openThread();
      if (!fresh || !current) return;
      var windowChanged = fresh.getAttribute("data-window-open") !== current.getAttribute("data-window-open");
      var draft = threadPane.querySelector("#composer-text");
      if (windowChanged && !(draft && draft.value)) { reloadThread(false); return; }
      ["data-status", "data-assignee", "data-window-open", "data-window-closes"].forEach(function (name) {
        current.setAttribute(name, fresh.getAttribute(name));
      });
      current.querySelector(".thread-head").replaceWith(fresh.querySelector(".thread-head"));
      localise(current);
      updateWindows();
      if (fresh.getAttribute("data-unread") !== "0") { current.setAttribute("data-unread", "1"); markRead(); }
    }).catch(function () { lost(id); });
  }

  // --- sound and desktop notifications (opt-in) -----------------------------------------------
  var soundBox = document.getElementById("opt-sound");
  var notifyBox = document.getElementById("opt-notify");
  soundBox.checked = localStorage.getItem("sigdesk-sound") === "1";
  notifyBox.checked = localStorage.getItem("sigdesk-notify") === "1" && window.Notification && Notification.permission === "granted";
  soundBox.addEventListener("change", function () { localStorage.setItem("sigdesk-sound", soundBox.checked ? "1" : "0"); if (soundBox.checked) beep(); });
  notifyBox.addEventListener("change", function () {
    if (!notifyBox.checked) { localStorage.setItem("sigdesk-notify", "0"); return; }
    if (!window.Notification) { notifyBox.checked = false; return; }
    Notification.requestPermission().then(function (answer) {
      notifyBox.checked = answer === "granted";
      localStorage.setItem("sigdesk-notify", notifyBox.checked ? "1" : "0");
    });
  });

  var audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      oscillator.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start();
      oscillator.stop(audio.currentTime + 0.25);
    } catch (error) { /* no audio device: stay quiet */ }
  }

  function alertIfInbound(data, isOpen) {
    if (!soundBox.checked && !notifyBox.checked) return;
    if (isOpen && document.visibilityState === "visible" && document.hasFocus()) return;
    fragment(conversationUrl(data.conversation_id, "/messages/" + data.message_id)).then(function (html) {
      var holder = el(html);
      var message = holder.querySelector(".msg.in");
      if (!message) return;
      if (soundBox.checked) beep();
      if (notifyBox.checked && window.Notification && Notification.permission === "granted") {
        var text = holder.querySelector(".msg-text");
        var row = document.getElementById("conv-" + data.conversation_id);
        var title = row ? row.querySelector(".conv-name").textContent : "New WhatsApp message";
        var shown = new Notification(title, { body: text ? text.textContent.slice(0, 140) : "New message", tag: "sigdesk-" + data.conversation_id });
        shown.onclick = function () { window.focus(); open(data.conversation_id); shown.close(); };
      }
    }).catch(function () { /* not visible to this user */ });
  }

  // --- keyboard -------------------------------------------------------------------------------
  var help = document.getElementById("help");
  function toggleHelp(show) { help.hidden = show === undefined ? !help.hidden : !show; }
  document.getElementById("help-button").addEventListener("click", function () { toggleHelp(); });
  document.getElementById("help-close").addEventListener("click", function () { toggleHelp(false); });

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    var typing = tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable;
    if (event.key === "Escape") {
      toggleHelp(false);
      var picker = threadPane.querySelector("#emoji-picker");
      if (picker) picker.hidden = true;
      if (typing) event.target.blur();
      if (event.target === searchInput) { searchResults.hidden = true; }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    var all = rows();
    switch (event.key) {
      case "j": case "ArrowDown":
        event.preventDefault(); highlight(state.cursor + 1); break;
      case "k": case "ArrowUp":
        event.preventDefault(); highlight(state.cursor - 1); break;
      case "Enter":
        if (state.cursor >= 0 && all[state.cursor]) { event.preventDefault(); open(all[state.cursor].getAttribute("data-id")); }
        break;
      case "a":
        if (openThread()) { event.preventDefault(); assign("me"); }
        break;
      case "r":
        if (openThread()) { event.preventDefault(); setStatus("resolved"); }
        break;
      case "/":
        event.preventDefault(); searchInput.focus(); searchInput.select(); break;
      case "?":
        event.preventDefault(); toggleHelp(); break;
      case "c": case "n":
        if (threadPane.querySelector("#composer-text")) {
          event.preventDefault();
          setMode(event.key === "n" ? "note" : "reply");
          threadPane.querySelector("#composer-text").focus();
        }
        break;
      default:
    }
  });

  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") markRead(); });

  // --- start ----------------------------------------------------------------------------------
  setUnread(state.unread);
  afterList();
  loadCanned();
  connect(false);
  setInterval(updateWindows, 30000);
  setInterval(function () { localise(list); }, 60000);
  var selected = root.getAttribute("data-selected");
  // ?draft= (the Reorders page's suggested message) fills an empty composer once; open() drops it from the URL
  var draft = new URLSearchParams(location.search).get("draft");
  if (selected) open(selected, root.getAttribute("data-focus") || null).then(function () {
    var text = threadPane.querySelector("#composer-text");
    if (draft && text && !text.value) { text.value = draft; text.focus(); }
  });
})();
