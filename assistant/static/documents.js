// The UI's Documents tab: a client of /api/documents (list, upload, delete), run as the tab's js_on_load.
// Every call carries the admin key typed into the tab, so the tab can do exactly what the API allows that
// key and no more. Server text (names, titles, reasons) is inserted with textContent only, never as HTML.
const $ = (selector) => element.querySelector(selector);
const root = ((window.gradio_config && window.gradio_config.root) || location.origin).replace(/\/+$/, "");
const api = root + "/api/documents";

function say(text, bad) {
  const status = $(".docs-status");
  status.textContent = text;
  status.classList.toggle("bad", Boolean(bad));
}

async function call(method, path, body) {
  const key = $(".docs-key").value.trim();
  if (!key) throw new Error("enter an admin key first");
  const response = await fetch(api + path, {
    method, body, headers: { Authorization: "Bearer " + key }, credentials: "omit",
  });
  let data = null;
  try { data = await response.json(); } catch (error) { data = null; }
  if (!response.ok) {
    throw new Error((data && data.error && data.error.message) || "the server answered " + response.status);
  }
  return data;
}

function size(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function render(documents) {
  const body = $(".docs-table tbody");
  body.replaceChildren();
  for (const doc of documents) {
    const row = document.createElement("tr");
    row.dataset.name = doc.name;
    cell(row, doc.name);
    cell(row, doc.title);
    cell(row, doc.type);
    cell(row, size(doc.size));
    cell(row, String(doc.passages));
    cell(row, doc.indexed_at || "—");
    cell(row, doc.reason ? doc.status + ": " + doc.reason : doc.status).className = "docs-state " + doc.status;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "docs-delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", "Delete " + doc.name);
    remove.addEventListener("click", () => removeDocument(doc.name));
    cell(row, "").appendChild(remove);
    body.appendChild(row);
  }
  $(".docs-table").hidden = documents.length === 0;
}

async function load() {
  try {
    const data = await call("GET", "");
    render(data.documents);
    $(".docs-limits").textContent =
      "Types: " + data.types.join(" ") + " · up to " + data.max_file_mb + " MB per file.";
    if (!$(".docs-status").classList.contains("bad") && !$(".docs-status").textContent) {
      say(data.documents.length + " documents.");
    }
  } catch (error) {
    render([]);
    say(error.message, true);
  }
}

async function uploadDocument() {
  const input = $(".docs-file");
  const file = input.files && input.files[0];
  if (!file) return say("Choose a file to upload first.", true);
  const form = new FormData();
  form.append("file", file, file.name);
  say("Uploading and indexing " + file.name + " …");
  try {
    const data = await call("POST", "", form);
    const doc = data.document;
    say((data.replaced ? "Replaced " : "Added ") + doc.name + ": " + doc.status +
        (doc.status === "indexed" ? " (" + doc.passages + " passages)." : " — " + doc.reason));
    input.value = "";
    trigger("change");  // the chat tab's list of indexed sources follows
  } catch (error) {
    say("Not uploaded: " + error.message, true);
  }
  await load();
}

async function removeDocument(name) {
  if (!window.confirm("Delete " + name + " from the sources folder and the index?")) return;
  say("Deleting " + name + " …");
  try {
    await call("DELETE", "/" + name.split("/").map(encodeURIComponent).join("/"));
    say("Deleted " + name + ".");
    trigger("change");
  } catch (error) {
    say("Not deleted: " + error.message, true);
  }
  await load();
}

$(".docs-load").addEventListener("click", () => { say(""); load(); });
$(".docs-key").addEventListener("keydown", (event) => { if (event.key === "Enter") { say(""); load(); } });
$(".docs-upload").addEventListener("click", uploadDocument);
