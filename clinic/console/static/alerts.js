// Alerts on every signed-in console page (clinic/console/urgent.py says what is urgent).
// - GET /urgent/alerts.json every second: the Urgent view's open items (keys), how many visitors wait
//   for a person, and whether it is staffed hours.
// - The counts go into the menu (#urgent-count, #live-count) and the tab title ("(2) Conversations · ...").
// - An item this tab has not seen before (the keys seen are kept for the tab in sessionStorage, so moving
//   between pages does not alert again), in staffed hours: a short sound (unless muted: the "Sound" button,
//   remembered in localStorage), a desktop notification (the Notification API; permission is asked once,
//   from the "Turn on desktop alerts" button), and a line in #alert-status (a polite live region).
// Nothing here builds markup from data.
(function () {
  "use strict";

  var box = document.getElementById("alerts");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-poll-url");
  var ms = parseInt(box.getAttribute("data-poll-ms"), 10) || 1000;
  var soundButton = document.getElementById("alert-sound");
  var notifyButton = document.getElementById("alert-notify");
  var status = document.getElementById("alert-status");
  var baseTitle = document.title;
  var MUTED = "console.alerts.muted";
  var ASKED = "console.alerts.asked";
  var SEEN = "console.alerts.seen";
  var audio = null;

  function stored(storage, key) {
    try { return storage.getItem(key); } catch (e) { return null; }
  }
  function store(storage, key, value) {
    try { storage.setItem(key, value); } catch (e) { /* private mode: this page only */ }
  }

  // --- sound ---------------------------------------------------------------------------------

  function muted() { return stored(localStorage, MUTED) === "1"; }

  function showSound() {
    soundButton.hidden = false;
    soundButton.textContent = muted() ? "Sound off" : "Sound on";
    soundButton.setAttribute("aria-pressed", muted() ? "false" : "true");
  }

  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      if (audio.state === "suspended" && audio.resume) audio.resume();
      [[880, 0], [660, 0.18]].forEach(function (tone) {
        var oscillator = audio.createOscillator();
        var gain = audio.createGain();
        oscillator.frequency.value = tone[0];
        gain.gain.value = 0.15;
        oscillator.connect(gain);
        gain.connect(audio.destination);
        oscillator.start(audio.currentTime + tone[1]);
        oscillator.stop(audio.currentTime + tone[1] + 0.15);
      });
    } catch (e) { /* no sound: the title and the notification still tell */ }
  }

  soundButton.addEventListener("click", function () {
    store(localStorage, MUTED, muted() ? "0" : "1");
    showSound();
  });
  showSound();

  // --- desktop notifications -----------------------------------------------------------------

  function canNotify() { return "Notification" in window; }

  function showNotify() {
    notifyButton.hidden = !(canNotify() && Notification.permission === "default" && stored(localStorage, ASKED) !== "1");
  }

  notifyButton.addEventListener("click", function () {
    store(localStorage, ASKED, "1");
    var asked = Notification.requestPermission(function () { showNotify(); });
    if (asked && asked.then) asked.then(showNotify, showNotify);
    showNotify();
  });
  showNotify();

  function notify(text) {
    if (!canNotify() || Notification.permission !== "granted") return;
    try {
      var n = new Notification("Staff console", { body: text, tag: "console-urgent" });
      n.onclick = function () { window.focus(); window.location.href = "/urgent"; };
    } catch (e) { /* some browsers allow notifications from a service worker only */ }
  }

  // --- the poll ------------------------------------------------------------------------------

  function setCount(id, count) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = String(count);
    el.setAttribute("data-count", String(count));
    el.classList.toggle("waiting", count > 0);
  }

  function describe(fresh) {
    var waiting = fresh.filter(function (i) { return i.kind === "waiting"; }).length;
    var other = fresh.length - waiting;
    var parts = [];
    if (other) parts.push(other === 1 ? "1 new urgent item" : other + " new urgent items");
    if (waiting) parts.push(waiting === 1 ? "a visitor is waiting for a person" : waiting + " visitors are waiting for a person");
    return "New: " + parts.join("; ") + ".";
  }

  function update(data) {
    setCount("urgent-count", data.count);
    setCount("live-count", data.waiting);
    document.title = (data.count > 0 ? "(" + data.count + ") " : "") + baseTitle;
    var seen = {};
    (stored(sessionStorage, SEEN) || "").split(" ").forEach(function (key) { if (key) seen[key] = true; });
    var fresh = data.items.filter(function (i) { return !seen[i.key]; });
    store(sessionStorage, SEEN, data.items.map(function (i) { return i.key; }).join(" "));
    if (!fresh.length || !data.staffed) return;
    var text = describe(fresh);
    status.textContent = text;
    if (!muted()) beep();
    notify(text);
  }

  var timer = null;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) throw new Error("stopped");
        return response.json();
      })
      .then(function (data) { update(data); timer = setTimeout(poll, ms); },
            function () { status.textContent = "Alerts stopped (you may have been signed out). Reload the page."; });
  }
  poll();
})();
