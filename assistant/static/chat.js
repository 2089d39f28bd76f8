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
