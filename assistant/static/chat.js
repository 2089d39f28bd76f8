// Copy buttons copy the text the chat shows, not its Markdown source: no "*" around a refusal, no "\" before
// characters that were escaped so that source text could not act as markup. Gradio writes the Markdown to
// the clipboard when a copy button is clicked; this writes the shown text right after it.
if (!window.assistantCopiesText) {
  window.assistantCopiesText = true;
  const MESSAGES = "[data-testid=bot], [data-testid=user]";
  const shown = (message) => (message.querySelector(".message-content") || message).innerText.trim();

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest("button[aria-label]");
    if (!button || !navigator.clipboard) return;
    let text = null;
    if (button.getAttribute("aria-label") === "Copy message") {
      // The message's buttons follow its row inside the chat's message list.
      let row = button.closest(".message-buttons");
      row = row && row.previousElementSibling;
      while (row && !row.querySelector(MESSAGES)) row = row.previousElementSibling;
      const messages = row ? row.querySelectorAll(MESSAGES) : [];
      if (messages.length) text = shown(messages[messages.length - 1]);
    } else if (button.getAttribute("aria-label") === "Copy conversation") {
      const chat = button.closest(".block");
      const role = (message) => (message.dataset.testid === "bot" ? "assistant: " : "user: ");
      if (chat) text = Array.from(chat.querySelectorAll(MESSAGES), (m) => role(m) + shown(m)).join("\n\n");
    }
    if (text) setTimeout(() => navigator.clipboard.writeText(text).catch(() => {}), 50);
  }, true);
}

// Every answer keeps its own source cards (one section per answer in the sources panel). Clicking an answer
// shows its section; following one of its [n] links shows the section and brings that card into view.
if (!window.assistantShowsSources) {
  window.assistantShowsSources = true;

  const showAnswer = (answerNo, card) => {
    const panel = document.querySelector("#sources");
    if (!panel) return;
    const section = panel.querySelector(`.answer-sources[data-answer="${answerNo}"]`);
    if (!section) return;
    panel.querySelectorAll(".answer-sources.current").forEach((s) => s.classList.remove("current"));
    section.classList.add("current");
    document.querySelectorAll("#chat [data-testid=bot]").forEach((m, i) => m.classList.toggle("selected-answer", i === answerNo));
    const target = card ? section.querySelector(`#${CSS.escape(card)}`) : null;
    if (target) {
      target.open = true;
      target.classList.remove("flash");
      void target.offsetWidth; // restart the animation
      target.classList.add("flash");
      target.scrollIntoView({ block: "nearest", behavior: "smooth" });
      target.querySelector("summary").focus({ preventScroll: true });
    }
  };

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const message = target && target.closest("#chat [data-testid=bot]");
    if (!message) return;
    const link = target.closest("a[href*='#source-']");
    if (link) {
      event.preventDefault();
      event.stopPropagation();
      const [, answerNo, n] = link.getAttribute("href").match(/#source-(\d+)-(\d+)$/) || [];
      if (answerNo !== undefined) showAnswer(Number(answerNo), `source-${answerNo}-${n}`);
      return;
    }
    if (target.closest("button")) return;
    const answers = Array.from(document.querySelectorAll("#chat [data-testid=bot]"));
    showAnswer(answers.indexOf(message), null);
  }, true);
}
