/* Assistant chat widget. Embed with one tag:
 *   <script src="https://HOST/widget.js" data-title="Ask HR" data-color="#0f766e"
 *           data-position="right" data-greeting="Hi!" data-key="PUBLIC_WIDGET_KEY" defer></script>
 * Self-contained: no CDN, no third-party request; everything renders inside a shadow root and all
 * server text is inserted with textContent, never as HTML.
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
  var history = [];

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
    ".head{background:" + color + ";color:#fff;padding:12px 14px;font-weight:600;display:flex;justify-content:space-between}" +
    ".head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;font-size:14px;line-height:1.45}" +
    ".msg{max-width:90%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".user{align-self:flex-end;background:" + color + ";color:#fff}.bot{align-self:flex-start;background:#f1f5f9}" +
    ".refused{font-style:italic;color:#475569}.err{background:#fef2f2;color:#991b1b}" +
    ".cites{display:flex;flex-direction:column;gap:6px;margin-top:6px}" +
    "details{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:6px 8px;font-size:12.5px}" +
    "summary{cursor:pointer;font-weight:600}mark{background:#fde68a}" +
    "form{display:flex;border-top:1px solid #e2e8f0}input{flex:1;border:0;padding:12px;font-size:14px;outline:none}" +
    "form button{border:0;background:" + color + ";color:#fff;padding:0 16px;cursor:pointer}";

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
    card.appendChild(el("div", null, c.source));
    return card;
  }

  function mount(config) {
    var host = el("div");
    host.id = "assistant-widget";
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    root.appendChild(el("style", null, css));
    var launch = el("button", "launch");
    var ns = "http://www.w3.org/2000/svg";
    var icon = document.createElementNS(ns, "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("width", "26");
    icon.setAttribute("height", "26");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    icon.appendChild(path);
    launch.appendChild(icon);
    launch.setAttribute("aria-label", "Open chat");
    var panel = el("div", "panel");
    panel.setAttribute("role", "dialog");
    var head = el("div", "head");
    head.appendChild(el("span", null, opt.title || config.title || "Ask the sources"));
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
    if (greeting) log.appendChild(el("div", "msg bot", greeting));

    function toggle(open) {
      panel.classList.toggle("open", open);
      if (open) input.focus();
    }
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

    function finish(bubble, question, answer) {
      bubble.textContent = answer.answer;
      if (answer.refused) bubble.classList.add("refused");
      if (answer.citations && answer.citations.length) {
        var list = el("div", "cites");
        answer.citations.forEach(function (c) { list.appendChild(citationCard(c)); });
        bubble.appendChild(list);
      }
      history.push({ role: "user", content: question }, { role: "assistant", content: answer.answer });
      history = history.slice(-12);
    }

    function ask(question, bubble) {
      var body = JSON.stringify({ question: question, history: history });
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
