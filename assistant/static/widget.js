/* Assistant chat widget. Embed with one tag:
 *   <script src="https://HOST/widget.js" data-title="Ask HR" data-color="#0f766e"
 *           data-position="right" data-greeting="Hi!" data-key="PUBLIC_WIDGET_KEY" defer></script>
 * Self-contained: no CDN, no third-party request; everything renders inside a shadow root and all
 * server text is inserted with textContent, never as HTML. The conversation is kept in this page's
 * localStorage (nothing about it on the server) until "New chat"; answers can be copied and rated.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__assistantWidget) return;
  window.__assistantWidget = true;
  var base = new URL(script.src, location.href).origin;
  var opt = script.dataset || {};
  var color = /^#[0-9a-fA-F]{3,8}$/.test(opt.color || "") ? opt.color : "#1d4ed8";
  var side = opt.position === "left" ? "left" : "right";
  var headers = { "Content-Type": "application/json" };
  if (opt.key) headers.Authorization = "Bearer " + opt.key;
  var storeKey = "assistant-widget:" + base;
  var messages = load();

  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      return saved && Array.isArray(saved.messages) ? saved.messages : [];
    } catch (e) {
      return [];
    }
  }

  function save() {
    messages = messages.slice(-40);
    try {
      localStorage.setItem(storeKey, JSON.stringify({ messages: messages }));
    } catch (e) { /* storage full or off: the chat still works, it just does not last */ }
  }

  function history() {
    // The turns sent with a question: the conversation's last question-answer pairs, as text.
    var turns = [];
    messages.forEach(function (m) {
      if (m.role === "user" || (m.role === "assistant" && !m.error)) turns.push({ role: m.role, content: m.text });
    });
    return turns.slice(-12);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  var css =
    ":host{all:initial}*{box-sizing:border-box;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif}" +
    ".launch{position:fixed;bottom:20px;" + side + ":20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:" + color + ";color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}" +
    ".panel{position:fixed;bottom:88px;" + side + ":20px;width:min(380px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));" +
    "background:#fff;color:#111;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:none;flex-direction:column;" +
    "overflow:hidden;z-index:2147483000}.panel.open{display:flex}" +
    ".head{background:" + color + ";color:#fff;padding:12px 14px;font-weight:600;display:flex;align-items:center;gap:8px}" +
    ".head span{flex:1}.head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}" +
    ".head .new{font-size:12.5px;border:1px solid rgba(255,255,255,.7);border-radius:6px;padding:3px 8px}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;font-size:14px;line-height:1.45}" +
    ".msg{max-width:90%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".user{align-self:flex-end;background:" + color + ";color:#fff}.bot{align-self:flex-start;background:#f1f5f9}" +
    ".refused{font-style:italic;color:#475569}.err{background:#fef2f2;color:#991b1b}" +
    ".cites{display:flex;flex-direction:column;gap:6px;margin-top:6px}" +
    "details{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:6px 8px;font-size:12.5px}" +
    "summary{cursor:pointer;font-weight:600}mark{background:#fde68a}.where{color:#64748b;margin-top:4px}" +
    ".open-doc{display:inline-block;margin-top:4px;color:" + color + "}" +
    ".acts{display:flex;gap:6px;align-items:center;margin-top:6px;font-size:12px;color:#475569;font-style:normal}" +
    ".acts button{border:1px solid #cbd5e1;background:#fff;color:#111;border-radius:6px;padding:2px 8px;cursor:pointer;" +
    "font-size:12px;line-height:16px;display:inline-flex;align-items:center}" +
    ".acts button[aria-pressed=true]{background:" + color + ";border-color:" + color + ";color:#fff}" +
    ".acts button:disabled{cursor:default}" +
    "form{display:flex;border-top:1px solid #e2e8f0}input{flex:1;border:0;padding:12px;font-size:14px;outline:none}" +
    "form button{border:0;background:" + color + ";color:#fff;padding:0 16px;cursor:pointer}";

  var SVG = "http://www.w3.org/2000/svg";
  function icon(d, size) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size);
    svg.setAttribute("height", size);
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", d);
    svg.appendChild(path);
    return svg;
  }

  function thumb(down) {
    // Material Design's thumb_up (Apache-2.0); turned over for thumbs down.
    var svg = icon("M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
      "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z", "13");
    if (down) svg.style.transform = "rotate(180deg)";
    return svg;
  }

  function documentLink(c) {
    // open_url is signed for one document until exp (Unix s); an expired one would get 401.
    try {
      var url = new URL(c.open_url, base);
      var exp = Number(url.searchParams.get("exp")), expired = exp > 0 && exp * 1000 <= Date.now();
      if (url.origin === base && url.pathname.indexOf("/api/sources/") === 0 && !expired) return url.href;
    } catch (e) { /* none */ }
    return null;
  }

  function citationCard(c) {
    var card = el("details");
    card.open = c.n === 1;
    card.appendChild(el("summary", null, "[" + c.n + "] " + c.title));
    var body = el("div");
    var cursor = c.start;
    (c.highlights || []).slice().sort(function (a, b) { return a[0] - b[0]; }).forEach(function (h) {
      body.appendChild(document.createTextNode(c.text.slice(cursor - c.start, h[0] - c.start)));
      body.appendChild(el("mark", null, c.text.slice(h[0] - c.start, h[1] - c.start)));
      cursor = h[1];
    });
    body.appendChild(document.createTextNode(c.text.slice(cursor - c.start)));
    card.appendChild(body);
    // Where the passage is: the page or section heading when the document has one, else the file.
    card.appendChild(el("div", "where", c.location ? c.source + " · " + c.location : c.source));
    var link = documentLink(c);
    if (link) {
      var open = el("a", "open-doc", "Open document");
      open.href = link;
      open.target = "_blank";
      open.rel = "noopener noreferrer";
      card.appendChild(open);
    }
    return card;
  }

  function mount(config) {
    var host = el("div");
    host.id = "assistant-widget";
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    root.appendChild(el("style", null, css));
    var launch = el("button", "launch");
    launch.appendChild(icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z", "26"));
    launch.setAttribute("aria-label", "Open chat");
    var panel = el("div", "panel");
    panel.setAttribute("role", "dialog");
    var head = el("div", "head");
    head.appendChild(el("span", null, opt.title || config.title || "Ask the sources"));
    var fresh = el("button", "new", "New chat");
    fresh.type = "button";
    fresh.setAttribute("aria-label", "New chat");
    head.appendChild(fresh);
    var close = el("button", null, "×");
    close.setAttribute("aria-label", "Close chat");
    head.appendChild(close);
    var log = el("div", "log");
    log.setAttribute("aria-live", "polite");
    var form = el("form");
    var input = el("input");
    input.placeholder = "Ask a question…";
    input.setAttribute("aria-label", "Question");
    input.maxLength = 2000;
    var send = el("button", null, "Ask");
    send.type = "submit";
    form.appendChild(input);
    form.appendChild(send);
    panel.appendChild(head);
    panel.appendChild(log);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(launch);
    var greeting = opt.greeting || config.greeting;

    function restart() {
      log.textContent = "";
      if (greeting) log.appendChild(el("div", "msg bot", greeting));
      messages.forEach(function (m) {
        if (m.role === "user") log.appendChild(el("div", "msg user", m.text));
        else show(log.appendChild(el("div", "msg bot")), m);
      });
      log.scrollTop = log.scrollHeight;
    }
    fresh.onclick = function () {
      messages = [];
      save();
      restart();
      input.focus();
    };

    function toggle(open) {
      panel.classList.toggle("open", open);
      if (open) input.focus();
    }
    restart();
    launch.onclick = function () { toggle(!panel.classList.contains("open")); };
    close.onclick = function () { toggle(false); };

    form.onsubmit = function (event) {
      event.preventDefault();
      var question = input.value.trim();
      if (!question) return;
      input.value = "";
      send.disabled = true;
      log.appendChild(el("div", "msg user", question));
      var bubble = el("div", "msg bot", "…");
      log.appendChild(bubble);
      log.scrollTop = log.scrollHeight;
      ask(question, bubble).finally(function () {
        send.disabled = false;
        log.scrollTop = log.scrollHeight;
      });
    };

    function show(bubble, m) {
      // An answer: its text, its source cards, and copy and thumbs (errors get neither).
      bubble.textContent = m.text;
      bubble.classList.toggle("refused", Boolean(m.refused));
      bubble.classList.toggle("err", Boolean(m.error));
      if (m.error) return;
      if (m.citations && m.citations.length) {
        var list = el("div", "cites");
        m.citations.forEach(function (c) { list.appendChild(citationCard(c)); });
        bubble.appendChild(list);
      }
      var acts = el("div", "acts");
      var copy = el("button", null, "Copy");
      copy.type = "button";
      copy.onclick = function () {
        copyText(m.text).then(function () { copy.textContent = "Copied"; }, function () { copy.textContent = "Copy failed"; });
        setTimeout(function () { copy.textContent = "Copy"; }, 1500);
      };
      acts.appendChild(copy);
      var note = el("span", "note");
      var thumbs = [["up", "Helpful"], ["down", "Not helpful"]].map(function (t) {
        var b = el("button", "rate-" + t[0]);
        b.appendChild(thumb(t[0] === "down"));
        b.type = "button";
        b.setAttribute("aria-label", t[2]);
        b.setAttribute("aria-pressed", String(m.rated === t[0]));
        b.disabled = Boolean(m.rated);
        b.onclick = function () { rate(m, t[0], thumbs, note); };
        acts.appendChild(b);
        return b;
      });
      if (m.rated) note.textContent = "Thanks for the feedback";
      acts.appendChild(note);
      bubble.appendChild(acts);
    }

    function copyText(text) {
      if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
      return new Promise(function (resolve, reject) {
        var area = el("textarea");
        area.value = text;
        root.appendChild(area);
        area.select();
        var ok = document.execCommand("copy");
        root.removeChild(area);
        if (ok) resolve(); else reject(new Error("copy refused"));
      });
    }

    function rate(m, rating, thumbs, note) {
      thumbs.forEach(function (b) { b.disabled = true; });
      var body = JSON.stringify({
        rating: rating, question: m.question, answer: m.text,
        citations: (m.citations || []).map(function (c) { return { n: c.n, source: c.source, start: c.start, end: c.end }; })
      });
      fetch(base + "/api/widget/feedback", { method: "POST", headers: headers, body: body, mode: "cors" })
        .then(function (r) {
          if (!r.ok) throw new Error(r.status);
          m.rated = rating;
          save();
          thumbs.forEach(function (b) { b.setAttribute("aria-pressed", String(b.className === "rate-" + rating)); });
          note.textContent = "Thanks for the feedback";
        })
        .catch(function () {
          thumbs.forEach(function (b) { b.disabled = false; });
          note.textContent = "Could not send the feedback";
        });
    }

    function finish(bubble, question, answer) {
      var m = { role: "assistant", question: question, text: answer.answer, refused: Boolean(answer.refused),
                citations: answer.citations || [] };
      messages.push({ role: "user", text: question }, m);
      save();
      show(bubble, m);
    }

    function ask(question, bubble) {
      var body = JSON.stringify({ question: question, history: history() });
      return fetch(base + "/api/ask/stream", { method: "POST", headers: headers, body: body, mode: "cors" })
        .then(function (response) {
          if (!response.ok) {
            return response.json().then(function (e) { throw new Error((e.error && e.error.message) || response.status); });
          }
          var reader = response.body.getReader();
          var decoder = new TextDecoder();
          var buffer = "";
          var text = "";
          function pump() {
            return reader.read().then(function (step) {
              if (step.done) return;
              buffer += decoder.decode(step.value, { stream: true }).replace(/\r\n/g, "\n");
              var cut;
              while ((cut = buffer.indexOf("\n\n")) >= 0) {
                var block = buffer.slice(0, cut);
                buffer = buffer.slice(cut + 2);
                var name = "message";
                var data = "";
                block.split("\n").forEach(function (line) {
                  if (line.indexOf("event:") === 0) name = line.slice(6).trim();
                  else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
                });
                if (!data) continue;
                var payload = JSON.parse(data);
                if (name === "token") {
                  text += payload.text;
                  bubble.textContent = text;
                } else if (name === "done") {
                  finish(bubble, question, payload);
                }
              }
              return pump();
            });
          }
          return pump();
        })
        .catch(function (error) {
          bubble.textContent = "Sorry, the assistant is unavailable (" + error.message + ").";
          bubble.classList.add("err");
        });
    }
  }

  function start() {
    fetch(base + "/api/widget/config", { headers: headers, mode: "cors" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(mount)
      .catch(function () {
        console.warn("assistant widget: this page's origin is not allowed to embed the assistant");
      });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
