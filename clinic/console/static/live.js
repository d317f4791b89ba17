// The console's live chat pages, kept current without a reload (both pages work without this script).
// - The queue (#live-queue): GET /live/queue.json every 2 s; its tables come rendered (and escaped) by the server.
// - A chat (#chat): GET /live/<id>/events.json?after=<last event id>&v=<version> every second: new messages
//   (server-rendered <li>s), the state panel when the chat changed, and whether this person may reply;
//   replies go by fetch with the page's CSRF token, so the page does not reload.
// Nothing here builds markup from data: the server renders every fragment (Jinja autoescaping).
(function () {
  "use strict";

  function setCount(count) {
    var el = document.getElementById("live-count");
    if (!el || typeof count !== "number") return;
    el.textContent = String(count);
    el.setAttribute("data-count", String(count));
    el.classList.toggle("waiting", count > 0);
  }

  function say(text) {
    var el = document.getElementById("poll-status");
    if (el) el.textContent = text;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) {
          throw new Error("stopped");
        }
        return response.json();
      });
  }

  // Replace a container's content, keeping keyboard focus on the same control when it is still there.
  function swap(container, html) {
    var active = document.activeElement;
    var key = null;
    if (active && container.contains(active)) {
      key = [active.getAttribute("data-action"), active.getAttribute("data-request")];
    }
    container.innerHTML = html;
    if (key && key[0]) {
      var selector = '[data-action="' + key[0] + '"]' + (key[1] ? '[data-request="' + key[1] + '"]' : "");
      var again = container.querySelector(selector);
      if (again) again.focus();
    }
  }

  function poller(intervalMs, step) {
    var stopped = false;
    var timer = null;
    var running = false;
    function run() {
      if (stopped || running) return;
      running = true;
      clearTimeout(timer);
      step().then(function (keepGoing) {
        running = false;
        if (keepGoing === false) { stopped = true; return; }
        say("");
        timer = setTimeout(run, intervalMs);
      }, function () {
        running = false;
        stopped = true;
        say("Updates stopped (you may have been signed out). Reload the page.");
      });
    }
    timer = setTimeout(run, intervalMs);
    return { now: run };
  }

  // --- the queue -------------------------------------------------------------------

  function queuePage(container) {
    var url = container.getAttribute("data-poll-url");
    var ms = parseInt(container.getAttribute("data-poll-ms"), 10) || 2000;
    var last = null;
    poller(ms, function () {
      return getJSON(url).then(function (data) {
        setCount(data.count);
        if (data.html !== last) {
          swap(container, data.html);
          last = data.html;
        }
      });
    });
  }

  // --- one chat ----------------------------------------------------------------------

  function chatPage(chat) {
    var url = chat.getAttribute("data-poll-url");
    var ms = parseInt(chat.getAttribute("data-poll-ms"), 10) || 1000;
    var list = document.getElementById("messages");
    var panel = document.getElementById("panel");
    var form = document.getElementById("reply");
    var textarea = form ? form.querySelector("textarea[name=text]") : null;
    var status = document.getElementById("reply-status");

    function append(html) {
      var holder = document.createElement("template");
      holder.innerHTML = html;
      var added = null;
      Array.prototype.slice.call(holder.content.children).forEach(function (li) {
        var id = li.getAttribute("data-event-id");
        if (id && list.querySelector('[data-event-id="' + id + '"]')) return;
        list.appendChild(li);
        added = li;
      });
      if (added) added.scrollIntoView({ block: "nearest" });
    }

    var poll = poller(ms, function () {
      var query = "?after=" + encodeURIComponent(chat.getAttribute("data-after") || "0") +
        "&v=" + encodeURIComponent(chat.getAttribute("data-version") || "");
      return getJSON(url + query).then(function (data) {
        if (data.messages_html) append(data.messages_html);
        chat.setAttribute("data-after", String(data.after));
        if (data.panel_html !== null && data.panel_html !== undefined) {
          swap(panel, data.panel_html);
          chat.setAttribute("data-version", String(data.version));
        }
        chat.setAttribute("data-state", data.state);
        if (form) form.hidden = !data.can_reply;
        setCount(data.count);
        return data.state === "waiting" || data.state === "live";  // an ended chat changes no more
      });
    });

    if (!form || !textarea) return;
    // a canned reply: its text goes in the reply box, to be edited and sent
    Array.prototype.slice.call(form.querySelectorAll('[data-action="canned"]')).forEach(function (button) {
      button.addEventListener("click", function () {
        textarea.value = button.getAttribute("data-text") || "";
        textarea.focus();
        textarea.setSelectionRange(textarea.value.length, textarea.value.length);
      });
    });
    function send(event) {
      event.preventDefault();
      var text = textarea.value.trim();
      if (!text) { status.textContent = "Type a reply first."; return; }
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      status.textContent = "Sending…";
      fetch(form.getAttribute("action"), {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: new URLSearchParams(new FormData(form)),
      }).then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (type.indexOf("application/json") !== 0) {
          throw new Error("Not sent: the page has expired (or you were signed out). Reload the page.");
        }
        return response.json().then(function (data) {
          if (!data.ok) throw new Error(data.error || "Not sent.");
        });
      }).then(function () {
        textarea.value = "";
        status.textContent = "Sent.";
        poll.now();
      }, function (error) {
        status.textContent = error.message;
      }).then(function () {
        button.disabled = false;
        textarea.focus();
      });
    }
    form.addEventListener("submit", send);
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) send(event);  // Shift+Enter: a new line
    });
  }

  function start() {
    var queue = document.getElementById("live-queue");
    if (queue) queuePage(queue);
    var chat = document.getElementById("chat");
    if (chat) chatPage(chat);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
