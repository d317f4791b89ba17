/*
 * The clinic's chat widget. One tag on any page:
 *
 *   <script src="https://clinic.example/widget.js" data-clinic-name="..."
 *           data-color="#2f6f5e" data-greeting="..." data-open="false"
 *           data-retention-days="..." data-privacy-url="https://clinic.example/privacy" defer></script>
 *
 * (the clinic's page writes the last two from its settings: RETENTION_DAYS and clinic.yml's
 * privacy_url, for the privacy line at the top of the panel) adds a launcher button and a
 * chat panel that talk to the visitor API on the
 * script's own origin (/api/chat, /api/history, /api/reset). When the visitor
 * asks for a person, a line under the header says who answers, a status area
 * shows the place in the queue with a "Leave the queue" button
 * (/api/handoff/cancel), and a long poll (/api/updates) brings the person's
 * messages, with the expected wait when recent waits give one; it reconnects with a backoff when
 * the server restarts. The greeting carries starter buttons (the assistant's greeting's, sent by
 * number: {"starter": n}) until something is said; "Start over" sits under the message box and asks
 * to confirm. No dependencies,
 * no build step, no third-party requests. Everything lives in a shadow root,
 * styled by widget.css from the same folder as this script (no inline styles,
 * so it runs under a strict CSP). Message text is only ever put in the page as
 * text nodes: bot text gets light formatting (paragraphs, "- " lists, **bold**,
 * links to the clinic's own origin, tel:/sms: (with a text to send), e-mail addresses, US phone
 * numbers and 988 as tap targets) built node by node.
 */
(function () {
  "use strict";

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll("script[src]");
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) { return all[i]; }
    }
    return null;
  })();
  if (!script || window.__clinicChatWidget) { return; }
  window.__clinicChatWidget = true;

  var SRC = new URL(script.src, document.baseURI);
  var BASE = SRC.origin;
  var CSS_URL = new URL("widget.css", SRC).href;
  var TIMEOUT_MS = 15000;
  var POLL_TIMEOUT_MS = 45000; // the server answers a long poll within 25 s
  var POLL_BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];
  var POLL_SLACK_S = 2; // ask for a little more than needed: what was already shown is skipped
  var STORAGE_KEY = "clinic-chat:open:" + BASE;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var options = {
    clinicName: (script.getAttribute("data-clinic-name") || "").trim() || "Our clinic",
    color: safeColor(script.getAttribute("data-color")),
    greeting: (script.getAttribute("data-greeting") || "").trim() ||
      "Hi! Ask me anything about at-home ketamine therapy, or ask whether it could be right for you.",
    open: (script.getAttribute("data-open") || "").toLowerCase() === "true",
    retentionDays: wholeDays(script.getAttribute("data-retention-days")),
    privacyUrl: httpUrl(script.getAttribute("data-privacy-url"))
  };

  // --- small helpers -----------------------------------------------------------

  function safeColor(value) {
    value = (value || "").trim();
    return /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(value) ? value : "#2f6f5e";
  }

  function wholeDays(value) {
    var n = /^\s*[1-9][0-9]{0,4}\s*$/.test(value || "") ? parseInt(value, 10) : NaN;
    return isFinite(n) ? n : null;
  }

  function httpUrl(value) {
    try {
      var url = new URL((value || "").trim());
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) { return null; }
  }

  function textOn(hex) {
    // black or white text, whichever reads better on this colour
    var h = hex.slice(1);
    if (h.length === 3) { h = h.replace(/(.)/g, "$1$1"); }
    var rgb = [0, 2, 4].map(function (i) {
      var c = parseInt(h.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return lum > 0.35 ? "#111" : "#fff";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function svgIcon(paths) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "ccw-icon");
    paths.forEach(function (d) {
      var p = document.createElementNS(SVG_NS, "path");
      p.setAttribute("d", d);
      svg.appendChild(p);
    });
    return svg;
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function storageGet() {
    try { return window.sessionStorage.getItem(STORAGE_KEY); } catch (e) { return null; }
  }

  function storageSet(value) {
    try { window.sessionStorage.setItem(STORAGE_KEY, value); } catch (e) { /* storage off: fine */ }
  }

  function timeOf(ts) {
    var d = typeof ts === "number" && isFinite(ts) ? new Date(ts * 1000) : new Date();
    var t = el("time", "ccw-time", d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" }));
    t.setAttribute("datetime", d.toISOString());
    return t;
  }

  // --- safe light formatting of bot text ----------------------------------------

  function allowedHref(raw) {
    var href = raw.trim();
    // tel: and sms: to a number; an sms: may carry the text to send (sms:741741?&body=HOME)
    if (/^(tel|sms):\+?[0-9][0-9\-().\s]{1,20}$/i.test(href)) { return href.replace(/\s+/g, ""); }
    if (/^sms:\+?[0-9][0-9\-]{1,20}\?&?body=[A-Za-z0-9]{1,40}$/i.test(href)) { return href; }
    if (/^mailto:[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z]{2,24}$/.test(href)) { return href; }
    var url;
    try { url = new URL(href, BASE); } catch (e) { return null; }
    if ((url.protocol === "https:" || url.protocol === "http:") && url.origin === BASE &&
        (/^https?:\/\//i.test(href) || href.charAt(0) === "/")) {
      return url.href;
    }
    return null;
  }

  function link(href, label) {
    var a = el("a", "ccw-link", label);
    a.setAttribute("href", href);
    if (/^https?:/i.test(href) && BASE !== window.location.origin) {
      a.setAttribute("target", "_blank");
      a.setAttribute("rel", "noopener noreferrer");
    }
    return a;
  }

  // In order: a [label](link), a bare link, tel:/sms:, an e-mail address, a US phone number, 988.
  var INLINE = new RegExp([
    "\\[([^\\]\\n]{1,200})\\]\\(([^)\\s]{1,500})\\)",
    "(https?:\\/\\/[^\\s<>()]+[^\\s<>().,;:!?'\"])",
    "(tel:\\+?[0-9][0-9\\-]{1,20}|sms:\\+?[0-9][0-9\\-]{1,20})",
    "([A-Za-z0-9._%+\\-]{1,64}@[A-Za-z0-9\\-]{1,63}(?:\\.[A-Za-z0-9\\-]{1,63})*\\.[A-Za-z]{2,24})",
    "((?:\\+?1[\\-.\\s])?(?:\\([2-9][0-9]{2}\\)\\s?|[2-9][0-9]{2}[\\-.\\s])[0-9]{3}[\\-.\\s][0-9]{4})",
    "(988)"
  ].join("|"), "g");

  // A number stands alone: no digit (or a dash or dot joining digits) right before or after it.
  function standsAlone(text, offset, length) {
    var before = text.charAt(offset - 1);
    var after = text.charAt(offset + length);
    return !/[0-9\-.]/.test(before) && !/[0-9]/.test(after) && !/[\-.][0-9]/.test(text.substr(offset + length, 2));
  }

  function phoneHref(number) {
    var digits = number.replace(/[^0-9]/g, "");
    if (digits.length === 11 && digits.charAt(0) === "1") { digits = digits.slice(1); }
    return digits.length === 10 ? "tel:+1" + digits : null;
  }

  function appendLinks(parent, text) {
    var last = 0;
    text.replace(INLINE, function (match, label, mdHref, bare, telsms, email, phone, crisisLine, offset) {
      if ((phone || crisisLine) && !standsAlone(text, offset, match.length)) { return match; }
      if (offset > last) { parent.appendChild(document.createTextNode(text.slice(last, offset))); }
      var href = email ? allowedHref("mailto:" + email)
        : phone ? phoneHref(phone)
        : crisisLine ? "tel:988"
        : allowedHref(mdHref || bare || telsms);
      if (href) {
        parent.appendChild(link(href, label || match));
      } else {
        parent.appendChild(document.createTextNode(match));
      }
      last = offset + match.length;
      return match;
    });
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  function appendInline(parent, text) {
    text.split(/(\*\*[^*\n]+\*\*)/).forEach(function (part) {
      if (/^\*\*[^*\n]+\*\*$/.test(part)) {
        var strong = el("strong");
        appendLinks(strong, part.slice(2, -2));
        parent.appendChild(strong);
      } else if (part) {
        appendLinks(parent, part);
      }
    });
  }

  function formatBotText(container, text) {
    var blocks = String(text || "").replace(/\r\n?/g, "\n").split(/\n\s*\n/);
    blocks.forEach(function (block) {
      var lines = block.split("\n");
      var list = null;
      var para = null;
      lines.forEach(function (line) {
        var item = /^\s*[-*•]\s+(.*)$/.exec(line);
        if (item) {
          para = null;
          if (!list) { list = el("ul", "ccw-list"); container.appendChild(list); }
          var li = el("li");
          appendInline(li, item[1]);
          list.appendChild(li);
        } else if (line.trim()) {
          list = null;
          if (para) { para.appendChild(el("br")); } else { para = el("p", "ccw-p"); container.appendChild(para); }
          appendInline(para, line);
        }
      });
    });
  }

  // --- the DOM -------------------------------------------------------------------

  var host = el("div");
  host.id = "clinic-chat-widget";
  host.setAttribute("data-clinic-chat", "");
  host.style.setProperty("--ccw-accent", options.color);
  host.style.setProperty("--ccw-on-accent", textOn(options.color));
  var root = host.attachShadow({ mode: "open" });

  var sheet = el("link");
  sheet.setAttribute("rel", "stylesheet");
  sheet.setAttribute("href", CSS_URL);
  root.appendChild(sheet);

  var wrap = el("div", "ccw-root");
  wrap.hidden = true; // until widget.css has loaded, so nothing shows unstyled
  root.appendChild(wrap);

  var launcher = el("button", "ccw-launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-controls", "ccw-panel");
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-label", "Chat with the " + options.clinicName + " assistant");
  launcher.appendChild(svgIcon(["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"]));
  launcher.appendChild(el("span", "ccw-launcher-text", "Chat"));
  wrap.appendChild(launcher);

  var panel = el("section", "ccw-panel");
  panel.id = "ccw-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "false");
  panel.setAttribute("aria-labelledby", "ccw-title");
  panel.setAttribute("aria-describedby", "ccw-emergency");
  panel.hidden = true;
  wrap.appendChild(panel);

  var header = el("div", "ccw-header");
  var titles = el("div", "ccw-titles");
  var title = el("h2", "ccw-title", options.clinicName + " assistant");
  title.id = "ccw-title";
  titles.appendChild(title);
  var subtitle = el("p", "ccw-subtitle", "");
  titles.appendChild(subtitle);
  header.appendChild(titles);
  var closeBtn = el("button", "ccw-close");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", "Close chat");
  closeBtn.appendChild(svgIcon(["M6 6l12 12M18 6L6 18"]));
  header.appendChild(closeBtn);
  panel.appendChild(header);

  // who answers now: the assistant, or a named person from the clinic
  var who = el("p", "ccw-who");
  who.appendChild(el("span", "ccw-who-label", "Now answering: "));
  var whoName = el("strong", "ccw-who-name", "");
  who.appendChild(whoName);
  panel.appendChild(who);

  var emergency = el("p", "ccw-emergency");
  emergency.id = "ccw-emergency";
  emergency.appendChild(document.createTextNode("Not for emergencies: "));
  emergency.appendChild(link("tel:988", "call"));
  emergency.appendChild(document.createTextNode(" or "));
  emergency.appendChild(link("sms:988", "text"));
  emergency.appendChild(document.createTextNode(" 988"));
  panel.appendChild(emergency);

  // what happens to the chat, said before anything is typed (the page gives the figures)
  var privacy = el("p", "ccw-privacy");
  privacy.id = "ccw-privacy";
  privacy.appendChild(document.createTextNode(
    (options.retentionDays ? "This chat is stored for " + options.retentionDays + " days" : "This chat is stored") +
    " and read by our care team; messages about safety are flagged for staff." +
    (options.privacyUrl ? " " : "")));
  if (options.privacyUrl) {
    var policy = el("a", "ccw-link", "Privacy policy");
    policy.setAttribute("href", options.privacyUrl);
    policy.setAttribute("target", "_blank");
    policy.setAttribute("rel", "noopener noreferrer");
    privacy.appendChild(policy);
  }
  panel.appendChild(privacy);
  panel.setAttribute("aria-describedby", "ccw-emergency ccw-privacy");

  var log = el("div", "ccw-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-relevant", "additions");
  log.setAttribute("aria-label", "Conversation");
  log.tabIndex = 0;
  panel.appendChild(log);

  // the wait for a person: place in line, and a way out
  var waitBox = el("div", "ccw-waiting");
  waitBox.hidden = true;
  var waitText = el("p", "ccw-waiting-text", "");
  var leaveBtn = el("button", "ccw-leave", "Leave the queue");
  leaveBtn.type = "button";
  waitBox.appendChild(waitText);
  waitBox.appendChild(leaveBtn);
  panel.appendChild(waitBox);

  var typing = el("div", "ccw-typing");
  typing.setAttribute("role", "status");
  var dots = el("span", "ccw-dots");
  dots.setAttribute("aria-hidden", "true");
  dots.appendChild(el("span"));
  dots.appendChild(el("span"));
  dots.appendChild(el("span"));
  var typingText = el("span", "ccw-typing-text", "");
  typing.appendChild(dots);
  typing.appendChild(typingText);
  typing.hidden = true;
  panel.appendChild(typing);

  var form = el("form", "ccw-form");
  form.setAttribute("autocomplete", "off");
  form.noValidate = true;
  form.setAttribute("aria-busy", "false");
  var label = el("label", "ccw-sr", "Your message");
  label.setAttribute("for", "ccw-input");
  var input = el("input", "ccw-input");
  input.id = "ccw-input";
  input.type = "text";
  input.name = "message";
  input.maxLength = 2000;
  input.setAttribute("placeholder", "Type your message…");
  input.setAttribute("enterkeyhint", "send");
  var sendBtn = el("button", "ccw-send");
  sendBtn.type = "submit";
  sendBtn.setAttribute("aria-label", "Send");
  sendBtn.appendChild(svgIcon(["M3 20l18-8L3 4v6l12 2-12 2z"]));
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(form);

  // "Start over", at the bottom, away from the close button, and asked once more before it clears
  var footer = el("div", "ccw-footer");
  var restart = el("button", "ccw-restart", "Start over");
  restart.type = "button";
  restart.setAttribute("aria-label", "Start over: clear this conversation");
  restart.setAttribute("aria-expanded", "false");
  restart.setAttribute("aria-controls", "ccw-confirm");
  footer.appendChild(restart);
  var confirmBox = el("div", "ccw-confirm");
  confirmBox.id = "ccw-confirm";
  confirmBox.setAttribute("role", "group");
  confirmBox.setAttribute("aria-labelledby", "ccw-confirm-text");
  confirmBox.hidden = true;
  var confirmText = el("p", "ccw-confirm-text", "Start over? This clears the conversation on this device.");
  confirmText.id = "ccw-confirm-text";
  var confirmYes = el("button", "ccw-confirm-yes", "Yes, start over");
  confirmYes.type = "button";
  var confirmNo = el("button", "ccw-confirm-no", "Cancel");
  confirmNo.type = "button";
  confirmBox.appendChild(confirmText);
  confirmBox.appendChild(confirmYes);
  confirmBox.appendChild(confirmNo);
  footer.appendChild(confirmBox);
  panel.appendChild(footer);

  sheet.addEventListener("load", function () { wrap.hidden = false; });
  sheet.addEventListener("error", function () { wrap.hidden = false; });

  // --- the log --------------------------------------------------------------------

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function reveal(visitorItem) {
    // the answer from its start: the visitor's message at the top when the answer is long
    var max = log.scrollHeight - log.clientHeight;
    var top = visitorItem && visitorItem.parentNode === log ? visitorItem.offsetTop - 8 : max;
    log.scrollTop = Math.max(0, Math.min(max, top));
  }

  function addVisitor(text, ts) {
    var item = el("div", "ccw-msg ccw-visitor");
    item.appendChild(el("span", "ccw-sr", "You said: "));
    var body = el("div", "ccw-body");
    body.appendChild(el("p", "ccw-p", text));
    item.appendChild(body);
    item.appendChild(timeOf(ts));
    log.appendChild(item);
    scrollDown();
    return item;
  }

  function addBot(message, active) {
    var item = el("div", "ccw-msg ccw-bot");
    item.appendChild(el("span", "ccw-sr", "Assistant said: "));
    var body = el("div", "ccw-body");
    formatBotText(body, message.text);
    item.appendChild(body);
    var buttons = Array.isArray(message.buttons) ? message.buttons : [];
    var row = null;
    if (buttons.length) {
      row = el("div", "ccw-buttons");
      row.setAttribute("role", "group");
      row.setAttribute("aria-label", "Answer options");
      buttons.forEach(function (b) {
        var btn = el("button", "ccw-choice", String(b.title || b.payload || ""));
        btn.type = "button";
        btn.disabled = !active;
        btn.addEventListener("click", function () { pressButton(row, btn, b); });
        row.appendChild(btn);
      });
      item.appendChild(row);
    }
    item.appendChild(timeOf(message.ts));
    log.appendChild(item);
    scrollDown();
    return row;
  }

  function addStaff(message) {
    var agent = String(message.agent || "").trim() || "Clinic team";
    var item = el("div", "ccw-msg ccw-staff");
    item.appendChild(el("span", "ccw-sr", agent + " from the clinic team said: "));
    var name = el("p", "ccw-agent", agent + ", clinic team");
    name.setAttribute("aria-hidden", "true");
    item.appendChild(name);
    var body = el("div", "ccw-body");
    formatBotText(body, message.text);
    item.appendChild(body);
    item.appendChild(timeOf(message.ts));
    log.appendChild(item);
    scrollDown();
    return item;
  }

  function addEvent(text) {
    // a change of who answers, said in the log (read out by screen readers)
    var item = el("p", "ccw-event", text);
    log.appendChild(item);
    scrollDown();
  }

  function addNotice(text) {
    var item = el("div", "ccw-msg ccw-error");
    item.setAttribute("role", "alert");
    item.appendChild(el("p", "ccw-p", text));
    log.appendChild(item);
    scrollDown();
  }

  // --- ratings: a thumbs up or down under each of the assistant's answers (POST /api/rating) -------

  var THUMB_UP = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
  var THUMB_DOWN = "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

  // messageId: the id of the visitor's message this answer answers (the server finds it by that)
  function addRating(item, messageId) {
    if (!item || !messageId || item.querySelector(".ccw-rate")) { return; }
    var bar = el("div", "ccw-rate");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Was this answer helpful?");
    var up = el("button", "ccw-rate-up");
    up.type = "button";
    up.setAttribute("aria-label", "Helpful");
    up.setAttribute("aria-pressed", "false");
    up.appendChild(svgIcon([THUMB_UP]));
    var down = el("button", "ccw-rate-down");
    down.type = "button";
    down.setAttribute("aria-label", "Not helpful");
    down.setAttribute("aria-pressed", "false");
    down.appendChild(svgIcon([THUMB_DOWN]));
    var said = el("span", "ccw-rate-said", "");
    bar.appendChild(up);
    bar.appendChild(down);
    bar.appendChild(said);
    var why = el("form", "ccw-rate-why");
    why.hidden = true;
    why.noValidate = true;
    var whyId = "ccw-why-" + messageId;
    var whyLabel = el("label", "ccw-rate-why-label", "What was wrong? (optional)");
    whyLabel.setAttribute("for", whyId);
    var whyInput = el("input", "ccw-rate-why-input");
    whyInput.id = whyId;
    whyInput.type = "text";
    whyInput.maxLength = 500;
    var whySend = el("button", "ccw-rate-why-send", "Send");
    whySend.type = "submit";
    why.appendChild(whyLabel);
    why.appendChild(whyInput);
    why.appendChild(whySend);

    function record(value, comment) {
      var body = { message_id: messageId, rating: value };
      if (comment) { body.comment = comment; }
      return request("POST", "/api/rating", body).then(function () { return true; }, function () {
        said.textContent = "Sorry, that didn't reach us. Please try again.";
        return false;
      });
    }
    up.addEventListener("click", function () {
      up.setAttribute("aria-pressed", "true");
      down.setAttribute("aria-pressed", "false");
      why.hidden = true;
      record("up").then(function (ok) { if (ok) { said.textContent = "Thanks!"; } });
    });
    down.addEventListener("click", function () {
      down.setAttribute("aria-pressed", "true");
      up.setAttribute("aria-pressed", "false");
      record("down").then(function (ok) {
        if (!ok) { return; }
        said.textContent = "Thanks for telling us.";
        why.hidden = false;
        whyInput.focus({ preventScroll: true });
      });
    });
    why.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = whyInput.value.trim();
      if (!text) { why.hidden = true; return; }
      whySend.disabled = true;
      record("down", text).then(function (ok) {
        whySend.disabled = false;
        if (ok) { why.hidden = true; said.textContent = "Thanks: that helps us improve."; }
      });
    });
    item.insertBefore(bar, item.querySelector(".ccw-time"));
    item.insertBefore(why, item.querySelector(".ccw-time"));
  }

  function disableAllChoices() {
    var all = log.querySelectorAll(".ccw-choice");
    for (var i = 0; i < all.length; i++) { all[i].disabled = true; }
  }

  function showTyping(on) {
    typing.hidden = !on;
    typingText.textContent = on ? "The assistant is typing…" : "";
    if (on) { scrollDown(); }
  }

  function clearLog() {
    while (log.firstChild) { log.removeChild(log.firstChild); }
  }

  // The greeting, with the starter buttons (the assistant's greeting's, from the server) while
  // nothing has been said yet; a starter is sent by its number ({"starter": n}).
  function greet(starters) {
    addBot({ text: options.greeting, buttons: [] }, false);
    var list = Array.isArray(starters) ? starters : [];
    if (!list.length) { return; }
    var row = el("div", "ccw-buttons ccw-starters");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Suggested questions");
    list.forEach(function (s) {
      if (typeof s.id !== "number" || typeof s.title !== "string" || !s.title) { return; }
      var btn = el("button", "ccw-choice ccw-starter", s.title);
      btn.type = "button";
      btn.addEventListener("click", function () {
        if (busy || btn.disabled) { return; }
        var all = row.querySelectorAll("button");
        for (var i = 0; i < all.length; i++) { all[i].disabled = true; }
        btn.classList.add("ccw-chosen");
        btn.setAttribute("aria-pressed", "true");
        focusChoicesNext = true;
        send({ starter: s.id }, s.title);
      });
      row.appendChild(btn);
    });
    log.lastChild.insertBefore(row, log.lastChild.querySelector(".ccw-time"));
  }

  // --- talking to the visitor API -------------------------------------------------------

  function request(method, path, body, timeoutMs) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) { controller.abort(); } }, timeoutMs || TIMEOUT_MS);
    var init = { method: method, credentials: "include", headers: { Accept: "application/json" } };
    if (controller) { init.signal = controller.signal; }
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(BASE + path, init).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        clearTimeout(timer);
        if (!resp.ok) {
          var err = new Error((data && data.detail) || "HTTP " + resp.status);
          err.status = resp.status;
          err.detail = data && typeof data.detail === "string" ? data.detail : "";
          err.data = data || {};
          throw err;
        }
        return data || {};
      });
    }, function (e) {
      clearTimeout(timer);
      var err = new Error(e && e.name === "AbortError" ? "timeout" : "network");
      err.status = 0;
      err.timeout = !!(e && e.name === "AbortError");
      throw err;
    });
  }

  // --- who answers: the assistant, the queue for a person, or a person ----------------------

  var ASSISTANT = { mode: "assistant", agent: null, position: null, version: 0 };
  var handoff = ASSISTANT;
  var lastTs = 0;   // the latest server time seen (seconds): where the long poll starts
  var seen = {};    // the transcript's messages already shown (time and text), so none is shown twice
  var polling = false;
  var pollGen = 0;  // a poll answer from an earlier round (before a stop) is ignored
  var pollFailures = 0;
  var pollTimer = null;

  function readState(state) {
    state = state && typeof state === "object" ? state : {};
    var mode = state.mode === "waiting" || state.mode === "person" ? state.mode : "assistant";
    var wait = state.expected_wait_s;
    return {
      mode: mode,
      agent: typeof state.agent === "string" && state.agent.trim() ? state.agent.trim() : null,
      position: typeof state.position === "number" && isFinite(state.position) ? state.position : null,
      version: typeof state.version === "number" && isFinite(state.version) ? state.version : 0,
      expectedWait: typeof wait === "number" && isFinite(wait) && wait >= 0 ? wait : null
    };
  }

  // "about 4 minutes": how long the wait usually is, from how long visitors waited lately
  function waitWords(seconds) {
    var minutes = Math.max(1, Math.ceil(seconds / 60));
    if (minutes >= 90) { return "over an hour"; }
    return minutes === 1 ? "about a minute" : "about " + minutes + " minutes";
  }

  function agentLabel(state) {
    return (state.agent || "A person") + ", clinic team";
  }

  function showWho() {
    var person = handoff.mode === "person";
    whoName.textContent = person ? agentLabel(handoff) : "Assistant";
    who.classList.toggle("ccw-who-person", person);
    subtitle.textContent = person ? "Live chat with the clinic team" : "Automated answers, not medical advice";
    input.setAttribute("placeholder", person ? "Type your message to " + (handoff.agent || "the team") + "…" : "Type your message…");
    waitBox.hidden = handoff.mode !== "waiting";
    if (handoff.mode === "waiting") {
      waitText.textContent = "Waiting for a person from the team. " +
        (handoff.position ? "You're number " + handoff.position + " in line. " : "") +
        (handoff.expectedWait !== null ? "The wait is usually " + waitWords(handoff.expectedWait) + ". " : "") +
        "The assistant can still answer questions meanwhile.";
    }
  }

  function announce(before, after) {
    if (after.mode === "waiting" && before.mode !== "waiting") {
      addEvent("Waiting for a person from the team.");
    } else if (after.mode === "person" && (before.mode !== "person" || before.agent !== after.agent)) {
      addEvent("Now answering: " + agentLabel(after) + ".");
    } else if (after.mode === "assistant" && before.mode !== "assistant") {
      addEvent("Now answering: the assistant.");
    }
  }

  function applyHandoff(state, said) {
    if (!state) { return; }
    var before = handoff;
    handoff = readState(state);
    showWho();
    if (said) { announce(before, handoff); }
    if (handoff.mode === "assistant") { stopPolling(); } else { startPolling(); }
  }

  function noteTs(ts) {
    if (typeof ts === "number" && isFinite(ts) && ts > lastTs) { lastTs = ts; }
  }

  function seenBefore(m) {
    // true for a transcript message already shown; notes it as shown
    if (typeof m.ts !== "number") { return false; }
    var key = m.ts + "\n" + String(m.text || "");
    if (seen[key]) { return true; }
    seen[key] = true;
    return false;
  }

  function showFromTranscript(messages) {
    // messages the visitor's own requests did not bring (the person's, the handoff's lines)
    (Array.isArray(messages) ? messages : []).forEach(function (m) {
      if (!m || m.role === "visitor" || seenBefore(m)) { return; }
      noteTs(m.ts);
      if (m.role === "staff") { addStaff(m); } else { addBot(m, false); }
    });
  }

  function startPolling() {
    if (polling) { return; }
    polling = true;
    pollFailures = 0;
    pollOnce(++pollGen);
  }

  function stopPolling() {
    polling = false;
    pollGen++;
    clearTimeout(pollTimer);
  }

  function pollOnce(gen) {
    var query = "after=" + encodeURIComponent(String(Math.max(0, lastTs - POLL_SLACK_S))) +
      "&version=" + encodeURIComponent(String(handoff.version));
    if (handoff.mode === "waiting" && handoff.position) { query += "&position=" + handoff.position; }
    request("GET", "/api/updates?" + query, undefined, POLL_TIMEOUT_MS).then(function (data) {
      if (gen !== pollGen) { return; }
      pollFailures = 0;
      showFromTranscript(data.messages);
      applyHandoff(data.handoff, true);
      if (gen === pollGen && polling) { pollOnce(gen); }
    }, function () {
      // the server restarts, or the network is gone: try again, less and less often
      if (gen !== pollGen) { return; }
      var delay = POLL_BACKOFF_MS[Math.min(pollFailures, POLL_BACKOFF_MS.length - 1)];
      pollFailures++;
      clearTimeout(pollTimer);
      pollTimer = setTimeout(function () { if (gen === pollGen) { pollOnce(gen); } }, delay);
    });
  }

  leaveBtn.addEventListener("click", function () {
    if (leaveBtn.disabled) { return; }
    leaveBtn.disabled = true;
    request("POST", "/api/handoff/cancel", {}).then(function (data) {
      showFromTranscript(data.messages);
      applyHandoff(data.handoff, true);
    }, function (err) {
      if (err.data && err.data.handoff) { applyHandoff(err.data.handoff, true); }
      addNotice(err.detail || "Sorry, I couldn't take you out of the queue just now. Please try again in a moment.");
    }).then(function () {
      leaveBtn.disabled = false;
      if (isOpen() && waitBox.hidden) { input.focus({ preventScroll: true }); }
    });
  });

  var busy = false;
  var failed = null; // the failed request waiting for Retry: {body, visitorItem, errorItem}
  var focusChoicesNext = false;
  var historyLoaded;

  function setBusy(on) {
    busy = on;
    sendBtn.disabled = on;
    restart.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function retryable(err) {
    return !err.status || err.status >= 500 || err.status === 408 || err.status === 429;
  }

  function errorText(err) {
    if (err.timeout) {
      return "The assistant is taking too long to answer. Your message is kept: press Retry to send it again. " +
        "If you need to talk to someone now, call or text 988, or call 911 in an emergency.";
    }
    if (err.detail) { return err.detail + (retryable(err) ? " Your message is kept: press Retry to send it again." : ""); }
    return "Sorry, the assistant can't be reached right now. Your message is kept: press Retry to send it again. " +
      "If you need to talk to someone now, call or text 988, or call 911 in an emergency.";
  }

  function showError(err, pending) {
    var item = el("div", "ccw-msg ccw-error");
    item.setAttribute("role", "alert");
    var body = el("div", "ccw-body");
    body.appendChild(el("p", "ccw-p", errorText(err)));
    item.appendChild(body);
    if (retryable(err)) {
      var retry = el("button", "ccw-retry", "Retry");
      retry.type = "button";
      retry.addEventListener("click", function () {
        if (busy || failed !== pending) { return; }
        failed = null;
        if (item.parentNode) { item.parentNode.removeChild(item); }
        deliver(pending);
      });
      item.appendChild(retry);
      failed = pending;
      pending.errorItem = item;
      pending.visitorItem.classList.add("ccw-unsent");
    }
    log.appendChild(item);
    scrollDown();
  }

  function abandonFailed() {
    // a new message instead of Retry: the failed one stays shown, marked as unanswered
    if (!failed) { return; }
    var f = failed;
    failed = null;
    if (f.errorItem && f.errorItem.parentNode) {
      var retry = f.errorItem.querySelector(".ccw-retry");
      if (retry) { retry.disabled = true; }
    }
    if (!f.visitorItem.querySelector(".ccw-note")) {
      f.visitorItem.appendChild(el("span", "ccw-note", "No answer received"));
    }
  }

  function deliver(pending) {
    setBusy(true);
    // in a live chat the person answers when they do (through the long poll): no typing indicator
    showTyping(handoff.mode !== "person");
    return request("POST", "/api/chat", pending.body).then(function (data) {
      showTyping(false);
      pending.visitorItem.classList.remove("ccw-unsent");
      var messages = Array.isArray(data.messages) ? data.messages : [];
      var firstChoice = null;
      messages.forEach(function (m) {
        noteTs(m.ts);
        var row = addBot(m, true);
        if (row && !firstChoice) { firstChoice = row.querySelector("button"); }
      });
      if (messages.length && handoff.mode !== "person") { addRating(log.lastChild, pending.body.id); }
      applyHandoff(data.handoff, true);
      setBusy(false);
      if (isOpen()) {
        if (focusChoicesNext && firstChoice) {
          firstChoice.focus({ preventScroll: true });
        } else if (focusChoicesNext) {
          input.focus({ preventScroll: true });
        }
      }
      reveal(pending.visitorItem);
      focusChoicesNext = false;
    }, function (err) {
      showTyping(false);
      setBusy(false);
      showError(err, pending);
      if (isOpen() && (focusChoicesNext || root.activeElement === null)) { input.focus(); }
      focusChoicesNext = false;
    });
  }

  function send(body, shownText) {
    if (busy) { return false; }
    abandonFailed();
    disableAllChoices();
    body.id = uuid();
    var pending = { body: body, visitorItem: addVisitor(shownText) };
    historyLoaded.then(function () { deliver(pending); });
    setBusy(true);
    return true;
  }

  function pressButton(row, btn, b) {
    if (busy || btn.disabled) { return; }
    var buttons = row.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
    btn.classList.add("ccw-chosen");
    btn.setAttribute("aria-pressed", "true");
    focusChoicesNext = true;
    send({ button: { payload: String(b.payload), sig: String(b.sig), title: String(b.title || "") } },
      String(b.title || b.payload));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || busy) { input.focus(); return; }
    focusChoicesNext = false;
    if (send({ message: text }, text)) { input.value = ""; }
    input.focus();
  });

  function loadHistory() {
    log.setAttribute("aria-busy", "true");
    return request("GET", "/api/history").then(function (data) {
      var messages = Array.isArray(data.messages) ? data.messages : [];
      clearLog();
      failed = null;
      seen = {};
      lastTs = 0;
      greet(messages.length ? [] : data.starters);
      var lastVisitor = -1;
      messages.forEach(function (m, i) { if (m.role === "visitor") { lastVisitor = i; } });
      var answering = null; // the id of the visitor's message the bot messages that follow answer
      var lastBot = null;
      function rateAnswer() { if (answering && lastBot) { addRating(lastBot, answering); } }
      messages.forEach(function (m, i) {
        noteTs(m.ts);
        seenBefore(m);
        if (m.role === "visitor") {
          rateAnswer();
          answering = typeof m.id === "string" ? m.id : null;
          lastBot = null;
          addVisitor(String(m.text || ""), m.ts);
        } else if (m.role === "staff") {
          addStaff(m);
        } else {
          addBot(m, i > lastVisitor);
          lastBot = log.lastChild;
        }
      });
      rateAnswer();
      applyHandoff(data.handoff, false);
    }, function (err) {
      // no cookie never fails (the server answers an empty list without asking Rasa),
      // so a failure here means an earlier conversation that can't be shown just now
      clearLog();
      greet();
      var item = el("div", "ccw-msg ccw-error");
      item.setAttribute("role", "alert");
      var body = el("div", "ccw-body");
      body.appendChild(el("p", "ccw-p", "I couldn't load our earlier conversation just now. " +
        (err.detail || "Please try again in a moment.")));
      item.appendChild(body);
      var again = el("button", "ccw-retry", "Retry");
      again.type = "button";
      again.addEventListener("click", function () {
        if (busy) { return; }
        historyLoaded = loadHistory();
      });
      item.appendChild(again);
      log.appendChild(item);
    }).then(function () {
      log.removeAttribute("aria-busy");
      scrollDown();
    });
  }

  function askToStartOver(open) {
    confirmBox.hidden = !open;
    restart.hidden = open;
    restart.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) { confirmNo.focus(); }
  }

  restart.addEventListener("click", function () { if (!busy) { askToStartOver(true); } });
  confirmNo.addEventListener("click", function () {
    askToStartOver(false);
    restart.focus();
  });

  confirmYes.addEventListener("click", function () {
    if (busy) { return; }
    askToStartOver(false);
    setBusy(true);
    request("POST", "/api/reset", {}).then(function (data) {
      failed = null;
      stopPolling();
      seen = {};
      lastTs = 0;
      clearLog();
      greet(data.starters);
      applyHandoff(data.handoff || ASSISTANT, false);
    }, function (err) {
      addNotice(err.detail || "Sorry, I couldn't start over just now. Please try again in a moment.");
    }).then(function () {
      setBusy(false);
      input.focus();
    });
  });

  // --- open and close ---------------------------------------------------------------

  function isOpen() { return !panel.hidden; }

  function setOpen(open, moveFocus) {
    panel.hidden = !open;
    wrap.classList.toggle("ccw-is-open", open);
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    storageSet(open ? "1" : "0");
    if (open) {
      scrollDown();
      if (moveFocus) { input.focus(); }
    } else if (moveFocus) {
      launcher.focus();
    }
  }

  launcher.addEventListener("click", function () { setOpen(!isOpen(), true); });
  closeBtn.addEventListener("click", function () { setOpen(false, true); });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Esc") {
      event.preventDefault();
      event.stopPropagation();
      setOpen(false, true);
    }
  });

  // any element on the page with data-clinic-chat-open opens the chat (a "Chat with us" call to action)
  document.addEventListener("click", function (event) {
    var target = event.target && event.target.closest ? event.target.closest("[data-clinic-chat-open]") : null;
    if (target) {
      event.preventDefault();
      setOpen(true, true);
    }
  });

  function mount() {
    showWho();
    document.body.appendChild(host);
    var stored = storageGet();
    setOpen(stored === null ? options.open : stored === "1", false);
    historyLoaded = loadHistory();
  }

  window.ClinicChat = {
    open: function () { setOpen(true, true); },
    close: function () { setOpen(false, true); }
  };

  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
