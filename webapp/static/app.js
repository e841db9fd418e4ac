// The page is a client of the JSON API: POST the image, poll its prediction, draw the result.
// Several files at once go as one batch (POST /batches): its counts drive a progress bar, and its
// results file is offered for download.
"use strict";

const POLL_TIMEOUT_MS = 180000;
const MAX_POLL_INTERVAL_MS = 1000;
const WAIT_SECONDS = 10;

const form = document.getElementById("upload");
const input = document.getElementById("image");
const dropzone = document.getElementById("dropzone");
const figure = document.getElementById("preview-figure");
const preview = document.getElementById("preview");
const caption = document.getElementById("preview-caption");
const statusLine = document.getElementById("status");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");
const cancelButton = document.getElementById("cancel");
const batchSection = document.getElementById("batch");
const batchProgress = document.getElementById("batch-progress");
const batchCounts = document.getElementById("batch-counts");
const batchCancel = document.getElementById("batch-cancel");
const BATCH_POLL_MS = 1000;
let batchLocation = null; // the batch the batch Cancel button cancels
const keyForm = document.getElementById("api-key-form");
const keyInput = document.getElementById("api-key");
const keyMessage = document.getElementById("api-key-message");
let apiKey = sessionStorage.getItem("apiKey") || ""; // this tab's key, never written into the page
let currentJob = 0; // a newer upload makes the older one's answers irrelevant
let pendingLocation = null; // the job the Cancel button cancels

function readableLabel(label) {
  return label.replace(/_/g, " ");
}

function percent(score) {
  return `${(score * 100).toFixed(1)}%`;
}

function formatBytes(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

function setStatus(text, pending) {
  statusLine.textContent = text;
  statusLine.classList.toggle("pending", Boolean(pending));
}

function showError(text) {
  cancelButton.hidden = true;
  setStatus("");
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function reset() {
  cancelButton.hidden = true;
  batchCancel.hidden = true;
  batchSection.hidden = true;
  errorBox.hidden = true;
  errorBox.textContent = "";
  result.hidden = true;
}

// Problem documents (RFC 9457) say what was wrong in "detail".
async function problemText(response) {
  try {
    const body = await response.json();
    if (body.detail) return body.detail;
    if (body.title) return body.title;
  } catch (_) { /* not JSON: fall through */ }
  return `The service answered ${response.status} ${response.statusText}.`;
}

// Resolves with the key the user enters; `rejected` says the one sent was refused.
function askForKey(rejected) {
  keyMessage.textContent = rejected ? "That API key was not accepted; enter another." : "This service needs an API key.";
  keyForm.hidden = false;
  keyInput.focus();
  return new Promise((resolve) => {
    keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      keyForm.hidden = true;
      const key = keyInput.value.trim();
      keyInput.value = "";
      resolve(key);
    }, { once: true });
  });
}

// Every API call: JSON answers, this tab's key if it has one, and on 401 a key asked for and the call sent again.
async function apiFetch(url, options = {}) {
  for (;;) {
    const headers = { Accept: "application/json" };
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    const response = await fetch(url, { ...options, headers });
    if (response.status !== 401) return response;
    setStatus("");
    apiKey = await askForKey(Boolean(apiKey));
    sessionStorage.setItem("apiKey", apiKey);
    setStatus("Sending again with the key…", true);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function showResult(body) {
  document.getElementById("prediction").textContent = readableLabel(body.prediction);
  document.getElementById("confidence").textContent = `${percent(body.confidence)} confident`;
  const list = document.getElementById("top5");
  list.replaceChildren(...body.top5.map(({ label, score }) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = readableLabel(label);
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("aria-hidden", "true"); // the percentage beside it says the same in words
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${Math.max(score * 100, 0.5)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "score";
    value.textContent = percent(score);
    item.append(name, track, value);
    return item;
  }));
  // Which model answered (results recorded before provenance existed have none).
  document.getElementById("provenance").textContent = body.model
    ? `${body.model.name} on ${body.model.runtime}, weights ${body.model.weights_sha256}` : "";
  result.hidden = false;
}

async function waitForPrediction(location, job) {
  const started = Date.now();
  while (job === currentJob) {
    // A long poll: the service answers as soon as the job ends, or after WAIT_SECONDS with 202.
    const asked = Date.now();
    const response = await apiFetch(`${location}?wait=${WAIT_SECONDS}`);
    if (response.status === 202) {
      const seconds = Math.round((Date.now() - started) / 1000);
      setStatus(`Waiting for a worker to classify it… (${seconds} s)`, true);
      if (Date.now() - started > POLL_TIMEOUT_MS) {
        throw new Error("No result after 3 minutes; the workers may be busy or stopped. Try again later.");
      }
      if (Date.now() - asked < (WAIT_SECONDS * 1000) / 2) {  // answered at once (no waiter): keep its pace
        const retryAfter = Number(response.headers.get("Retry-After")) || 1;
        await sleep(Math.min(retryAfter * 1000, MAX_POLL_INTERVAL_MS));
      }
      continue;
    }
    if (!response.ok) throw new Error(await problemText(response));
    return response.json();
  }
  return null;
}

async function classify(file) {
  const job = ++currentJob;
  reset();
  preview.hidden = false;
  preview.src = URL.createObjectURL(file);
  preview.alt = `Preview of ${file.name}`;
  caption.textContent = `${file.name} · ${formatBytes(file.size)}`;
  figure.hidden = false;

  const maxBytes = Number(form.dataset.maxBytes);
  if (file.size > maxBytes) {
    showError(`${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}. Choose a smaller image.`);
    return;
  }
  try {
    setStatus("Uploading…", true);
    // Multipart: the file goes as it is, no base64. The browser sets the Content-Type and boundary.
    const upload = new FormData();
    upload.append("image", file, file.name);
    upload.append("name", file.name);
    const response = await apiFetch(form.dataset.submitUrl, { method: "POST", body: upload });
    if (response.status !== 202) throw new Error(await problemText(response));
    const location = response.headers.get("Location") || `/predictions/${(await response.json()).uuid}`;
    setStatus("Queued; waiting for a worker…", true);
    pendingLocation = location;
    cancelButton.hidden = false;
    const body = await waitForPrediction(location, job);
    if (body === null) return; // superseded by a newer upload, or cancelled
    cancelButton.hidden = true;
    if (body.status === "failed") {
      showError(`The image could not be classified: ${body.error}`);
      return;
    }
    setStatus("Done.");
    showResult(body);
  } catch (error) {
    if (job !== currentJob) return;
    const text = error instanceof TypeError ? `Could not reach the service (${error.message}).` : error.message;
    showError(text);
  }
}

function showCounts(batch) {
  const counts = batch.request_counts;
  const ended = counts.total - counts.pending;
  batchProgress.max = counts.total;
  batchProgress.value = ended;
  const parts = [`${ended} of ${counts.total} ended`, `${counts.done} classified`];
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (counts.cancelled) parts.push(`${counts.cancelled} cancelled`);
  batchCounts.textContent = parts.join(", ");
}

async function classifyMany(files) {
  const job = ++currentJob;
  reset();
  figure.hidden = true;
  const maxImages = Number(form.dataset.batchMaxImages);
  if (files.length > maxImages) {
    showError(`${files.length} files chosen; one batch takes at most ${maxImages}. ` +
      "Choose fewer, or use `python -m client batch DIR` for a whole folder.");
    return;
  }
  try {
    setStatus(`Uploading ${files.length} images…`, true);
    const upload = new FormData();
    for (const file of files) upload.append("image", file, file.name);
    const response = await apiFetch(form.dataset.batchUrl, { method: "POST", body: upload });
    if (response.status !== 202) throw new Error(await problemText(response));
    let batch = await response.json();
    batchLocation = response.headers.get("Location") || `/batches/${batch.id}`;
    document.getElementById("batch-jsonl").href = `${batchLocation}/results`;
    document.getElementById("batch-csv").href = `${batchLocation}/results?format=csv`;
    batchSection.hidden = false;
    batchCancel.hidden = false;
    showCounts(batch);
    setStatus("Classifying; the results file holds every image that has ended so far.", true);
    while (job === currentJob && !batch.completed_at) {
      await sleep(BATCH_POLL_MS);
      const state = await apiFetch(batchLocation);
      if (!state.ok) throw new Error(await problemText(state));
      batch = await state.json();
      if (job === currentJob) showCounts(batch);
    }
    if (job !== currentJob) return;
    batchCancel.hidden = true;
    setStatus(batch.status === "cancelled" ? "Cancelled." : "Done: download the results file below.");
  } catch (error) {
    if (job !== currentJob) return;
    const text = error instanceof TypeError ? `Could not reach the service (${error.message}).` : error.message;
    showError(text);
  }
}

// DELETE cancels every image of the batch not yet classified; the loop above sees the batch end.
batchCancel.addEventListener("click", async () => {
  const response = await apiFetch(batchLocation, { method: "DELETE" });
  if (!response.ok) showError(await problemText(response));
});

function classifyFiles(files) {
  if (files.length === 1) classify(files[0]);
  else if (files.length > 1) classifyMany(files);
}

// DELETE cancels the job while it is pending; once it has ended (409) its result is on its way.
cancelButton.addEventListener("click", async () => {
  const job = currentJob;
  try {
    const response = await apiFetch(pendingLocation, { method: "DELETE" });
    if (job !== currentJob || response.status === 409) return;
    if (!response.ok) throw new Error(await problemText(response));
    currentJob += 1; // stop polling this job
    cancelButton.hidden = true;
    setStatus("Cancelled: no worker will classify it.");
  } catch (error) {
    if (job === currentJob) showError(error.message);
  }
});

// Not every file a browser can send is one it can show (TIFF, or not an image at all).
preview.addEventListener("error", () => {
  preview.hidden = true;
});

input.addEventListener("change", () => {
  classifyFiles([...input.files]);
});

for (const type of ["dragenter", "dragover"]) {
  dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    dropzone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
}
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  classifyFiles([...event.dataTransfer.files]);
});
