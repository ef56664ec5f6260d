// The dataset version pages (templates/datasets/): a new version's form is posted with the
// chosen file's name and size (the page answers JSON: the version's URLs, or the form's errors),
// then the file goes up in chunks through the upload API (PATCH .../upload, the raw bytes with
// Upload-Offset). A chunk that fails, or a page reloaded mid-way, resumes where the server
// stands (GET .../upload). Once every byte is there, the version's page follows the ingestion
// (polling its progress) until it is ready, refused or failed, and shows itself again.
// Configuration and words come from the page (#upload-config: "{name}" marks a value).

const config = JSON.parse(document.getElementById("upload-config").textContent);
const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const MAX_FAILURES = 5; // in a row, each waited on a little longer, before giving up
const POLL_MS = 1000;

function say(key, values = {}) {
  return config.words[key].replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

function size(bytes) {
  const units = [["gib", 1 << 30], ["mib", 1 << 20], ["kib", 1 << 10]];
  for (const [key, unit] of units) {
    if (bytes >= unit) return say(key, { n: (bytes / unit).toFixed(1) });
  }
  return say("bytes", { n: bytes });
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The API's error as a sentence: the fields' messages, else its message.
function describe(answer) {
  const error = answer && answer.error;
  if (!error) return "";
  const details = Object.values(error.fields || {}).flat();
  return details.length ? details.join(" ") : error.message;
}

class Uploader {
  constructor(file, target) {
    this.file = file;
    this.target = target; // {upload_url, version_url}
    this.bar = document.getElementById("upload-progress");
    this.status = document.getElementById("upload-status");
  }

  show(sent) {
    this.bar.value = this.file.size ? sent / this.file.size : 1;
    this.bar.setAttribute("aria-valuetext", `${Math.round(this.bar.value * 100)}%`);
    this.status.textContent = say("uploading", { sent: size(sent), size: size(this.file.size) });
  }

  // Where the upload stands on the server: the bytes it has.
  async where() {
    const response = await fetch(this.target.upload_url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status}`);
    const answer = await response.json();
    if (answer.state !== "uploading") window.location.assign(this.target.version_url);
    return answer.received;
  }

  // One chunk from `offset`: the bytes the server has after it, or null when it failed in a
  // way worth retrying (no answer, the server's fault, or another offset than it stands at).
  async send(offset) {
    const chunk = this.file.slice(offset, Math.min(offset + config.chunk_bytes, this.file.size));
    let response;
    try {
      response = await fetch(this.target.upload_url, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/octet-stream",
          "Upload-Offset": String(offset),
          "X-CSRFToken": csrfToken,
        },
        body: chunk,
        credentials: "same-origin",
      });
    } catch {
      return null;
    }
    if (response.ok) return (await response.json()).received;
    if (response.status === 409 || response.status >= 500) return null;
    throw new Refused(describe(await response.json().catch(() => null)) || response.statusText);
  }

  async run(offset) {
    let failures = 0;
    let sent = offset;
    this.show(sent);
    while (sent < this.file.size) {
      const received = await this.send(sent);
      if (received !== null) {
        sent = received;
        failures = 0;
        this.show(sent);
        continue;
      }
      failures += 1;
      if (failures > MAX_FAILURES) {
        this.status.textContent = say("gave_up", { sent: size(sent), size: size(this.file.size) });
        return false;
      }
      this.status.textContent = say("retrying");
      await pause(500 * failures);
      try {
        sent = await this.where();
        this.show(sent);
      } catch {
        // No answer yet: the next round tries again from where it was.
      }
    }
    this.status.textContent = say("uploaded");
    window.location.assign(this.target.version_url);
    return true;
  }
}

class Refused extends Error {}

async function upload(file, target, offset, button) {
  const uploader = new Uploader(file, target);
  try {
    if (!(await uploader.run(offset))) button.disabled = false;
  } catch (error) {
    uploader.status.textContent = say("refused", { message: error.message });
    button.disabled = false;
  }
}

// The new version's form: only the options of the chosen format are sent.
function followFormat(form) {
  const chosen = () => form.querySelector("input[name=format]:checked")?.value;
  const update = () => {
    for (const fieldset of form.querySelectorAll("fieldset[data-format]")) {
      const off = fieldset.dataset.format !== chosen();
      fieldset.disabled = off;
      fieldset.hidden = off;
    }
  };
  for (const radio of form.querySelectorAll("input[name=format]")) radio.addEventListener("change", update);
  update();
}

function showErrors(list, errors) {
  list.replaceChildren();
  for (const field of document.querySelectorAll("[aria-invalid=true]")) field.removeAttribute("aria-invalid");
  const items = document.createElement("ul");
  for (const error of errors) {
    const input = error.field && document.getElementById(`id_${error.field}`);
    if (input) input.setAttribute("aria-invalid", "true");
    for (const message of error.messages) {
      const item = document.createElement("li");
      item.textContent = error.label ? `${error.label}: ${message}` : message;
      items.append(item);
    }
  }
  list.append(items);
}

function newVersionPage(form) {
  const fileInput = document.getElementById("version-file");
  const button = document.getElementById("upload-button");
  const errors = document.getElementById("version-errors");
  followFormat(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    form.elements.file_name.value = file ? file.name : "";
    form.elements.size.value = file ? String(file.size) : "";
    button.disabled = true;
    errors.replaceChildren();
    let response;
    try {
      response = await fetch(form.action || window.location.href, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
        body: new FormData(form),
        credentials: "same-origin",
      });
    } catch {
      showErrors(errors, [{ messages: [say("gave_up", { sent: size(0), size: size(file ? file.size : 0) })] }]);
      button.disabled = false;
      return;
    }
    const answer = await response.json();
    if (response.status !== 201) {
      showErrors(errors, answer.errors);
      button.disabled = false;
      return;
    }
    // A reload now lands on the version's page, which resumes the upload.
    window.history.replaceState(null, "", answer.version_url);
    document.getElementById("upload").hidden = false;
    form.hidden = true;
    await upload(file, answer, 0, button);
  });
}

function resumePage(form) {
  const fileInput = document.getElementById("version-file");
  const button = document.getElementById("upload-button");
  const status = document.getElementById("upload-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = say("choose");
      return;
    }
    if (file.size !== config.upload_size || file.name !== config.file_name) {
      status.textContent = say("other_file", { name: config.file_name, size: size(config.upload_size) });
      return;
    }
    button.disabled = true;
    const uploader = new Uploader(file, config);
    let offset;
    try {
      offset = await uploader.where();
    } catch {
      status.textContent = say("gave_up", { sent: size(config.received), size: size(file.size) });
      button.disabled = false;
      return;
    }
    await upload(file, config, offset, button);
  });
}

// The ingestion's progress until it ends; then the page shows its result.
async function follow() {
  const bar = document.getElementById("ingest-progress");
  const status = document.getElementById("ingest-status");
  for (;;) {
    await pause(POLL_MS);
    let answer;
    try {
      const response = await fetch(config.progress_url, { credentials: "same-origin" });
      if (!response.ok) continue;
      answer = await response.json();
    } catch {
      continue;
    }
    if (answer.state !== "ingesting") {
      window.location.reload();
      return;
    }
    bar.value = answer.progress;
    bar.setAttribute("aria-valuetext", `${Math.round(answer.progress * 100)}%`);
    status.textContent = say("progress", { state: answer.state_label, percent: Math.round(answer.progress * 100) });
  }
}

const newForm = document.getElementById("version-form");
const resumeForm = document.getElementById("resume-form");
if (newForm) newVersionPage(newForm);
else if (resumeForm) resumePage(resumeForm);
else if (config.state === "ingesting") follow();
