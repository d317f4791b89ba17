// The chat on the clinic's page: talks to the visitor API (/api/chat).
// Text from the bot and the visitor is shown with textContent, never as HTML;
// **bold** is the only formatting, rendered as <strong> nodes.
(function () {
  "use strict";
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var status = document.getElementById("chat-status");
  var busy = false;

  function appendFormatted(el, text) {
    text.split(/(\*\*[^*]+\*\*)/).forEach(function (part) {
      if (/^\*\*[^*]+\*\*$/.test(part)) {
        var strong = document.createElement("strong");
        strong.textContent = part.slice(2, -2);
        el.appendChild(strong);
      } else if (part) {
        el.appendChild(document.createTextNode(part));
      }
    });
  }

  function addMessage(who, text, buttons) {
    var item = document.createElement("div");
    item.className = "msg " + who;
    var label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = who === "visitor" ? "You: " : "Assistant: ";
    item.appendChild(label);
    appendFormatted(item, text || "");
    if (buttons && buttons.length) {
      var row = document.createElement("div");
      row.className = "buttons";
      buttons.forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", function () { send({ button: { payload: b.payload, sig: b.sig } }, b.title); });
        row.appendChild(btn);
      });
      item.appendChild(row);
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function send(body, shown) {
    if (busy) { return; }
    busy = true;
    addMessage("visitor", shown);
    status.textContent = "The assistant is typing…";
    fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
    }).then(function (r) {
      if (!r.ok) { addMessage("error", r.data.detail || "Something went wrong. Please try again."); return; }
      r.data.messages.forEach(function (m) { addMessage("bot", m.text, m.buttons); });
    }).catch(function () {
      addMessage("error", "The assistant can't be reached right now. Please try again in a moment. If you need someone now, call or text 988.");
    }).then(function () {
      busy = false;
      status.textContent = "";
      input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { status.textContent = "Please type a message first."; return; }
    input.value = "";
    send({ message: text }, text);
  });

  addMessage("bot", "Hi! Ask me anything about at-home ketamine therapy, or say hello to see what I can help with.");
})();
