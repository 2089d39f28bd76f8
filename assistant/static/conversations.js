// The conversations panel: this browser's conversations, kept in localStorage and nowhere else.
// Runs as the panel's js_on_load: `element` is the panel, `props.value` the open conversation's record as the
// server last set it (after each answer), `trigger` sends "open" (with the record) or "new" to the server.
// Titles are user and source text: they are inserted with textContent only.
const KEY = "assistant.conversations";
const KEEP = 30; // conversations kept, newest first
let store = { open: null, items: [] };
try {
  const saved = JSON.parse(localStorage.getItem(KEY) || "null");
  if (saved && Array.isArray(saved.items)) store = { open: saved.open || null, items: saved.items };
} catch (error) { /* unreadable: start afresh */ }
let renaming = null;

function save() {
  store.items = store.items.slice(0, KEEP);
  while (true) {
    try {
      localStorage.setItem(KEY, JSON.stringify(store));
      return;
    } catch (error) { // full: the oldest conversation goes first
      if (store.items.length <= 1) return;
      store.items.pop();
    }
  }
}

function node(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = text;
  return el;
}

function render() {
  const list = element.querySelector(".conv-list");
  if (!list) return;
  list.replaceChildren();
  store.items.forEach((item) => {
    const row = node("li", item.id === store.open ? "open" : "");
    row.dataset.id = item.id;
    if (renaming === item.id) {
      const input = node("input");
      input.value = item.title;
      input.maxLength = 80;
      input.setAttribute("aria-label", "Conversation name");
      row.appendChild(input);
      row.appendChild(node("button", "conv-act conv-save", "Save"));
      list.appendChild(row);
      setTimeout(() => { input.focus(); input.select(); }, 0);
      return;
    }
    const open = node("button", "conv-open", item.title || "Untitled");
    open.title = item.title + (item.updated ? " · " + new Date(item.updated).toLocaleString() : "");
    if (item.id === store.open) open.setAttribute("aria-current", "true");
    row.appendChild(open);
    const rename = node("button", "conv-act conv-rename", "✎");
    rename.setAttribute("aria-label", "Rename " + (item.title || "conversation"));
    const remove = node("button", "conv-act conv-delete", "✕");
    remove.setAttribute("aria-label", "Delete " + (item.title || "conversation"));
    row.appendChild(rename);
    row.appendChild(remove);
    list.appendChild(row);
  });
  const empty = element.querySelector(".conv-empty");
  if (empty) empty.hidden = store.items.length > 0;
}

function file(record) {
  // The server's record of the open conversation, after an answer: filed under its id, newest first.
  if (!record || typeof record !== "object" || !record.id) {
    store.open = null;
  } else if (Array.isArray(record.turns) && record.turns.length) {
    const old = store.items.find((item) => item.id === record.id);
    const title = old && old.renamed ? old.title : record.title;
    const item = { id: record.id, title, renamed: Boolean(old && old.renamed), updated: Date.now(), turns: record.turns };
    store.items = [item, ...store.items.filter((other) => other.id !== record.id)];
    store.open = record.id;
  }
  save();
  render();
}

function finishRename(row, keep) {
  const item = store.items.find((other) => other.id === row.dataset.id);
  const input = row.querySelector("input");
  if (item && input && keep) {
    const title = input.value.replace(/\s+/g, " ").trim().slice(0, 80);
    if (title) { item.title = title; item.renamed = true; }
  }
  renaming = null;
  save();
  render();
}

element.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  if (target.closest(".conv-new")) {
    store.open = null;
    renaming = null;
    save();
    render();
    trigger("new");
    return;
  }
  const row = target.closest("li[data-id]");
  if (!row) return;
  const item = store.items.find((other) => other.id === row.dataset.id);
  if (!item) return;
  if (target.closest(".conv-save")) {
    finishRename(row, true);
  } else if (target.closest(".conv-rename")) {
    renaming = item.id;
    render();
  } else if (target.closest(".conv-delete")) {
    store.items = store.items.filter((other) => other.id !== item.id);
    const wasOpen = store.open === item.id;
    if (wasOpen) store.open = null;
    save();
    render();
    if (wasOpen) trigger("new");
  } else if (target.closest(".conv-open")) {
    store.open = item.id;
    save();
    render();
    trigger("open", { conversation: { id: item.id, title: item.title, turns: item.turns } });
  }
});

element.addEventListener("keydown", (event) => {
  const input = event.target instanceof HTMLInputElement ? event.target : null;
  const row = input && input.closest("li[data-id]");
  if (!row) return;
  if (event.key === "Enter") { event.preventDefault(); finishRename(row, true); }
  if (event.key === "Escape") { event.preventDefault(); finishRename(row, false); }
});

watch("value", () => file(props.value));
render();
// After a reload the conversation that was open is opened again.
const reopen = store.items.find((item) => item.id === store.open);
if (reopen) {
  setTimeout(() => trigger("open", { conversation: { id: reopen.id, title: reopen.title, turns: reopen.turns } }), 0);
}
