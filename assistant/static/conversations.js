// The conversations panel: this browser's conversations, kept in localStorage and nowhere else.
// Runs as the panel's js_on_load: `element` is the panel, `props.value` the open conversation's record as the
// server last set it (after each answer), `trigger` sends "open" (with the record) or "new" to the server.
// Titles are user and source text: they are inserted with textContent only. Every change reads the store
// afresh, so two tabs do not overwrite each other's conversations; `open` is the one last opened (reopened
// after a reload), `openId` the one this tab shows.
const KEY = "assistant.conversations";
const KEEP = 30; // conversations kept, newest first
const MAX_SENT = 200000; // characters of a conversation sent back on opening (the server's body limit is 256 KB)
let store = read();
let openId = store.open;
let renaming = null;

function read() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || "null");
    if (saved && Array.isArray(saved.items)) return { open: saved.open || null, items: saved.items };
  } catch (error) { /* unreadable: start afresh */ }
  return { open: null, items: [] };
}

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
    const row = node("li", item.id === openId ? "open" : "");
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
    if (item.id === openId) open.setAttribute("aria-current", "true");
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

function setOpen(id) {
  openId = id;
  store.open = id;
}

function send(item) {
  // Opening sends the conversation back to be shown; the oldest turns go first if it is too long to send.
  let turns = item.turns || [];
  while (turns.length > 2 && JSON.stringify(turns).length > MAX_SENT) turns = turns.slice(2);
  trigger("open", { conversation: { id: item.id, title: item.title, turns } });
}

function file(record) {
  // The server's record of the open conversation, after an answer: filed under its id, newest first.
  store = read();
  if (!record || typeof record !== "object" || !record.id) {
    setOpen(null);
  } else if (Array.isArray(record.turns) && record.turns.length) {
    const old = store.items.find((item) => item.id === record.id);
    const title = old && old.renamed ? old.title : record.title;
    const item = { id: record.id, title, renamed: Boolean(old && old.renamed), updated: Date.now(), turns: record.turns };
    store.items = [item, ...store.items.filter((other) => other.id !== record.id)];
    setOpen(record.id);
  }
  save();
  render();
}

function finishRename(row, keep) {
  store = read();
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
  store = read();
  if (target.closest(".conv-new")) {
    setOpen(null);
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
    const wasOpen = openId === item.id;
    if (wasOpen) setOpen(null);
    save();
    render();
    if (wasOpen) trigger("new");
  } else if (target.closest(".conv-open")) {
    setOpen(item.id);
    save();
    render();
    send(item);
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
window.addEventListener("storage", (event) => {
  if (event.key !== KEY) return;
  store = read(); // another tab changed the list
  if (!store.items.some((item) => item.id === openId)) openId = null;
  render();
});
render();
// After a reload the conversation that was open is opened again.
const reopen = store.items.find((item) => item.id === openId);
if (reopen) setTimeout(() => send(reopen), 0);
